# Each target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, as a CPU build: the project's torch>=... range is then already met
	# and pip does not pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py --report autolr-report.html

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

test-all: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check autolr tests benchmarks examples

bench: $(STAMP)
	$(PY) -m benchmarks.loop_overhead
	# autolr vs the alternatives: oracle grid (cached), replay, live sweeps, tables + plot
	nice -n 10 $(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info

# The Ray backend's tests (a two-node Ray cluster on loopback among them): they need the
# `ray` extra, which the dev install leaves out.
.PHONY: test-ray
test-ray: $(STAMP)
	$(PY) -m pip install --quiet -e '.[ray]'
	$(PY) -m pytest tests/test_ray.py tests/test_ray_cluster.py -q
