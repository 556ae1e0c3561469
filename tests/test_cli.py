"""The `autolr` command, driven as a user would: subprocesses, exit codes, a storage."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import autolr

MODEL_FILE = textwrap.dedent("""
    import torch
    from sklearn.datasets import load_digits

    def model():
        torch.set_num_threads(1)
        return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                   torch.nn.Linear(32, 10))

    def data():
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y

    def other_model():
        return model()
""")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "digits_model.py").write_text(MODEL_FILE)
    (tmp_path / "broken_model.py").write_text("import not_a_module_xyz\n")
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")  # a script's own end
    return tmp_path


def autolr_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolr", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def stored(cwd: Path, study: str = "digits_model"):
    return autolr.load(f"sqlite:///{cwd / 'autolr.db'}", study)


def test_tune_then_resume_with_more_trials_keeps_the_first_ones(workdir):
    first = autolr_cli("tune", "digits_model.py", "--trials", "3", "--epochs", "2", "--quiet",
                       cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "best val_loss" in first.stdout and "torch.optim.AdamW" in first.stdout
    assert "an LR finder (range test, batch" in first.stdout  # beside the tuned lr
    assert stored(workdir).range_test is not None
    before = {r.number: r.values for r in stored(workdir).records}
    assert len(before) == 3
    more = autolr_cli("tune", "digits_model.py", "--trials", "5", "--epochs", "2", "--quiet",
                      "--report", "out.html", cwd=workdir)
    assert more.returncode == 0, more.stderr
    after = {r.number: r.values for r in stored(workdir).records}
    assert len(after) == 5 and all(after[n] == v for n, v in before.items())
    assert (workdir / "out.html").stat().st_size > 0


def test_show_report_and_spaces(workdir):
    tuned = autolr_cli("tune", "digits_model.py", "--trials", "3", "--epochs", "1", "--quiet",
                       "--model-fn", "other_model", "--study", "s1", "--no-range-test",
                       "--pruner", "checked_halving", cwd=workdir)
    assert tuned.returncode == 0 and "LR finder" not in tuned.stdout
    assert stored(workdir, "s1").range_test is None
    show = autolr_cli("show", "--study", "s1", cwd=workdir)
    assert show.returncode == 0, show.stderr
    assert "lr" in show.stdout and "schedule" in show.stdout
    assert len([line for line in show.stdout.splitlines() if "complete" in line]) >= 1
    report = autolr_cli("report", "--study", "s1", "-o", "r.html", cwd=workdir)
    assert report.returncode == 0 and (workdir / "r.html").exists()
    piped = autolr_cli("report", "--study", "s1", "-o", "-", cwd=workdir)  # `-o - | ...`
    assert piped.returncode == 0 and piped.stdout.startswith("<!DOCTYPE html>")
    assert piped.stdout.rstrip().endswith("</html>") and "report: " in piped.stderr
    assert not (workdir / "-").exists()
    spaces = autolr_cli("spaces", cwd=workdir)
    assert spaces.returncode == 0 and "default" in spaces.stdout

    # a Ray sweep's storage is a directory holding <study>.autolr.json: show reads it too
    (workdir / "ray").mkdir()
    stored(workdir, "s1").save(workdir / "ray" / "s1.autolr.json")
    from_dir = autolr_cli("show", "--storage", "ray", cwd=workdir)  # its only study
    assert from_dir.returncode == 0 and from_dir.stdout == show.stdout
    assert autolr.load(workdir / "ray" / "s1.autolr.json").records == stored(workdir, "s1").records
    wrong = autolr_cli("show", "--storage", "ray", "--study", "s2", cwd=workdir)
    assert wrong.returncode == 2 and "no study 's2'" in wrong.stderr and "'s1'" in wrong.stderr


@pytest.mark.parametrize("backend, storage", [("optuna", "sqlite:///autolr.db"),
                                              ("ray", "autolr-ray")])
def test_a_sweep_is_stored_where_its_backend_keeps_sweeps(workdir, monkeypatch, backend,
                                                          storage):
    from autolr import cli

    given = {}
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's SIGTERM
    monkeypatch.setattr(autolr, "tune", lambda *a, **kw: given.update(kw) or autolr.TuneResult([]))
    assert cli.main(["tune", "digits_model.py", "--backend", backend, "--quiet"]) == 1
    assert given["storage"] == storage and given["backend"] == backend
    assert given["max_concurrent"] is None and given["n_jobs"] == 1
    assert cli.main(["tune", "digits_model.py", "--backend", "ray", "--max-concurrent", "3",
                     "--quiet"]) == 1
    assert given["max_concurrent"] == 3


@pytest.mark.parametrize("args, message", [
    (("tune",), "the following arguments are required"),
    (("tune", "missing.py"), "no such file"),
    (("tune", "digits_model.py", "--trials", "0"), "whole number >= 1"),
    # the flag's words, not tune's parameter's (it said "timeout=-5.0")
    (("tune", "digits_model.py", "--timeout", "-5"), "argument --timeout: expected seconds > 0"),
    (("tune", "digits_model.py", "--seed", "4294967296"),
     "argument --seed: expected a whole number from 0 to 4294967295"),
    (("tune", "digits_model.py", "--study", ""), "--study needs a name, but got an empty one"),
    (("show", "--storage", " "), "--storage needs a name, but got an empty one"),
    (("tune", "digits_model.py", "--model-fn", "nope"), "defines no function nope"),
    (("tune", "exits.py"), "exits.py called sys.exit(3) while autolr ran it; a model file is "
                           "imported, so its script part"),
    (("tune", "digits_model.py", "--space", "nope"), "valid presets are"),
    (("tune", "digits_model.py", "--pruner", "nope"),
     "pruner must be one of auto, checked_halving, decay_median"),
    (("tune", "digits_model.py", "--pruner", "budgeted", "--backend", "ray"),
     "runs with the Optuna backend"),
    (("frobnicate",), "invalid choice"),
    (("show", "--study", "nothing-here"), "no sweep is stored at 'sqlite:///autolr.db'"),
    (("show", "--storage", "."), "a directory with no saved sweep in it"),
    (("tune", "digits_model.py", "--jobs", "2", "--backend", "ray"),
     "sets the Optuna backend's worker processes"),
    (("tune", "digits_model.py", "--ray-address", "127.0.0.2:6390"),
     "ray_address is the Ray backend's; pass backend='ray'"),
    # checked before the sweep, not after it
    (("tune", "digits_model.py", "--report", "."), "it is a folder; give a file name in it"),
    (("report", "-o", "."), "it is a folder"),
    # the report over the sweep's own storage would destroy every trial
    (("tune", "digits_model.py", "--report", "autolr.db"), "it is where the sweep is stored"),
    (("tune", "digits_model.py", "--storage", "s.log", "--report", "./s.log"),
     "it is where the sweep is stored"),
    (("tune", "broken_model.py"),
     "broken_model.py raised ModuleNotFoundError: No module named 'not_a_module_xyz'"),
    (("tune", "no_such_package.model"), "cannot import 'no_such_package.model'"),
])
def test_bad_usage_exits_2_and_says_what_to_do(workdir, args, message):
    run = autolr_cli(*args, cwd=workdir)
    assert run.returncode == 2
    assert message in run.stderr


def test_a_storage_path_that_cannot_keep_the_sweep_exits_2_before_writing(workdir):
    (workdir / "notes.log").write_text("my notes\n")
    (workdir / "folder.log").mkdir()
    for storage, message in (("notes.log", "is not an Optuna journal"),
                             ("folder.log", "is a folder, not a file")):
        run = autolr_cli("tune", "digits_model.py", "--storage", storage, "--quiet",
                         cwd=workdir)
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert (workdir / "notes.log").read_text() == "my notes\n"


def test_sigint_mid_sweep_keeps_every_finished_trial_and_says_how_to_resume(workdir):
    args = ["tune", "digits_model.py", "--trials", "2000", "--epochs", "10", "--quiet"]
    # SIGINT as a terminal gives it, even when these tests run in the background (a shell
    # starts background jobs with SIGINT ignored, and the child would inherit that)
    process = subprocess.Popen([sys.executable, "-m", "autolr", *args], cwd=workdir, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = workdir / "autolr.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if db.exists() and len(_finished(db)) >= 3:
            break
    seen = _finished(db)
    assert len(seen) >= 3 and process.poll() is None, "the sweep must be running mid-way"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "autolr tune digits_model.py --trials 2000" in err
    assert "Traceback" not in err, err  # autolr's word only, not Optuna's
    kept = {r.number: r.values for r in stored(workdir).records if r.state != "failed"}
    assert all(kept[n] == values for n, values in seen.items())
    assert len(kept) < 2000


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_the_data_loads_exits_130_without_a_resume_line(workdir, sent):
    (workdir / "slow_model.py").write_text(
        "import pathlib, time\n"
        "def model():\n    raise AssertionError('never reached')\n"
        "def data():\n    pathlib.Path('loading').touch()\n    time.sleep(120)\n")
    process = subprocess.Popen([sys.executable, "-m", "autolr", "tune", "slow_model.py"],
                               cwd=workdir, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (workdir / "loading").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(sent)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "autolr: interrupted." in err and "Traceback" not in err, err
    assert "Resume" not in err and "kept" not in err  # nothing was stored to resume


def test_a_warning_the_summary_prints_is_not_logged_again(workdir):
    (workdir / "short.toml").write_text(  # AdamW's best on digits is near 1e-2
        'lr = [1e-5, 1e-3]\nschedules = ["constant"]\nbatch_sizes = [32]\n')
    done = autolr_cli("tune", "digits_model.py", "--trials", "3", "--epochs", "2", "--quiet",
                      "--no-range-test", "--space", "short.toml", cwd=workdir)
    assert done.returncode == 0, done.stderr
    said = "lies within a quarter decade of the top of the range searched"
    assert done.stdout.count(said) == 1 and said not in done.stderr


def test_python_m_autolr_takes_no_library_from_the_working_directory(workdir):
    # `python -m` puts the folder first on the path: its optuna.py was imported for optuna
    (workdir / "optuna.py").write_text("raise RuntimeError('not the optuna library')\n")
    done = autolr_cli("tune", "digits_model.py", "--trials", "1", "--epochs", "1", "--quiet",
                      "--no-range-test", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "not the optuna library" not in done.stderr


@pytest.mark.parametrize("sent", ["SIGINT", "SIGTERM"])
def test_a_stop_that_breaks_an_import_is_an_interrupt_not_the_files_error(workdir, sent):
    # Ctrl-C inside numpy's import, as torch loads, left it half-loaded: what raised next
    # was an ImportError (or a RecursionError), shown as the file's error with its traceback
    (workdir / "torn_model.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        f"    os.kill(os.getpid(), signal.{sent})\n"
        "    time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    raise ImportError('cannot load module more than once per process')\n")
    done = subprocess.run([sys.executable, "-m", "autolr", "tune", "torn_model.py"],
                          cwd=workdir, text=True, capture_output=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 130, done.stderr
    assert "autolr: interrupted." in done.stderr and "ImportError" not in done.stderr


def test_an_interrupted_quiet_sweep_says_only_how_to_resume(workdir, monkeypatch, capfd):
    import autolr._tune
    from autolr import cli

    train, calls = autolr._tune.train_trial, []

    def interrupted(*args, **kwargs):  # Ctrl-C while the second trial trains
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.chdir(workdir)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's SIGTERM
    monkeypatch.setattr(autolr._tune, "train_trial", interrupted)
    optuna_said = logging.Handler()  # Optuna's own handler writes to the stderr it began with
    optuna_said.emit = lambda record: said.append(record.getMessage())
    said: list[str] = []
    logging.getLogger("optuna").addHandler(optuna_said)
    try:
        code = cli.main(["tune", "digits_model.py", "--trials", "2", "--epochs", "1",
                         "--quiet", "--storage", "s.log"])
    finally:
        logging.getLogger("optuna").removeHandler(optuna_said)
    assert code == 130
    err = capfd.readouterr().err
    assert "autolr: interrupted" in err and "autolr tune digits_model.py --trials 2" in err
    assert "Traceback" not in err and not [line for line in said if "failed" in line], said
    # interrupted again at once, in the first trial of a new study: nothing to resume
    calls.clear()
    calls.append(1)
    code = cli.main(["tune", "digits_model.py", "--trials", "2", "--epochs", "1", "--quiet",
                     "--storage", "s.log", "--study", "other"])
    err = capfd.readouterr().err
    assert code == 130 and "interrupted before any trial finished: no trial is kept" in err
    assert "Resume" not in err


def _schema_ready(db: Path) -> bool:
    """Has the sweep finished creating the database? (Optuna writes the alembic version
    after its tables; opening the storage before that races the creation.)"""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return con.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def _finished(db: Path) -> dict[int, tuple]:
    if not (db.exists() and _schema_ready(db)):
        return {}
    try:
        return {r.number: r.values for r in autolr.load(f"sqlite:///{db}", "digits_model").records
                if r.state != "failed"}
    except autolr.AutoLRError as error:
        if "no study" not in str(error) and "holds no sweep" not in str(error):
            raise
        return {}  # the study is not created yet
    except Exception as error:  # a read racing the sweep's writes: try again next poll
        if "locked" not in str(error):
            raise
        return {}


def test_the_console_script_tunes_modules_of_a_package_in_the_working_directory(workdir):
    package = workdir / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("digits_a", "digits_b"):
        (package / f"{name}.py").write_text(MODEL_FILE)
    script = Path(sys.executable).parent / "autolr"  # its sys.path[0] is not the cwd
    for name in ("digits_a", "digits_b"):
        run = subprocess.run([str(script), "tune", f"models.{name}", "--trials", "1",
                              "--epochs", "1", "--quiet", "--no-range-test"], cwd=workdir,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
    # one study per module: the second did not resume the first one's sweep
    assert len(stored(workdir, "models_digits_a").records) == 1
    assert len(stored(workdir, "models_digits_b").records) == 1


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "autolr"
    assert script.exists()
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                         env={**os.environ})
    assert run.returncode == 0 and "tune" in run.stdout


def test_output_cut_short_by_its_reader_is_no_error(tmp_path):
    # `autolr show ... | head -3`: the reader leaves before the table is written
    from autolr import TrialRecord, TuneResult

    records = [TrialRecord(n, "complete", {"lr": 1e-3 * (n + 1), "schedule": "constant",
                                           "warmup_fraction": 0.0, "batch_size": 32,
                                           "optimizer": "adamw", "weight_decay": 0.0},
                           values=(1.0, 0.5 - n / 1000)) for n in range(300)]
    TuneResult(records, epochs=2).save(tmp_path / "s.json")
    show = subprocess.Popen([sys.executable, "-m", "autolr", "show", "--storage",
                             str(tmp_path / "s.json"), "--top", "300"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    show.stdout.close()  # as `head` does once it has its lines
    err = show.stderr.read()
    assert show.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_show_ranks_trials_without_a_value_last_and_rounds_epochs():
    from autolr.cli import format_table
    from autolr.result import TrialRecord, TuneResult
    from autolr.space import TrialConfig

    params = TrialConfig(1e-3).to_dict()
    result = TuneResult([
        TrialRecord(0, "complete", params, values=(0.5,), epochs_run=5.0),
        TrialRecord(1, "diverged", params, values=(), epochs_run=0.1),  # no value at all
        TrialRecord(2, "pruned", params, values=(0.3,), epochs_run=1.6222),
    ])
    rows = format_table(result, top=10).splitlines()[2:-1]
    assert [row.split()[0] for row in rows] == ["*0", "2", "1"]
    assert rows[1].endswith(" 1.62")
    picked = TrialRecord(3, "complete", params, values=(0.4,), seed_values=(0.4, 0.5),
                         holdout_values=(0.52,))
    confirmed = TrialRecord(4, "complete", params, values=(0.6,), seed_values=(0.6, 0.7))
    rows = format_table(TuneResult([picked, confirmed]), top=10).splitlines()[2:]
    assert " 0.52 held out " in rows[0] and " 0.65±0.07 " in rows[1]  # as the report has them
    # a better single run the pick passed over comes after the recommended trial
    lucky = TrialRecord(5, "complete", params, values=(0.1,))
    rows = format_table(TuneResult([lucky, picked]), top=10).splitlines()
    assert [row.split()[0] for row in rows[2:4]] == ["*3", "5"]
    assert rows[-1].startswith("* recommended")


def test_a_sweep_that_stopped_part_way_exits_1_with_the_resume_line(monkeypatch, capsys):
    from autolr import cli
    from autolr.errors import SweepStopped

    def died(args, argv):
        raise SweepStopped("1 worker process(es) died (exit codes [-9]); finished trials "
                           "are kept in the storage.")

    monkeypatch.setattr(cli, "_tune", died)
    assert cli.main(["tune", "digits_model.py", "--jobs", "2"]) == 1  # not bad input (2)
    err = capsys.readouterr().err
    assert "died (exit codes [-9])" in err
    assert err.endswith("Resume with:\n  autolr tune digits_model.py --jobs 2\n")


def test_show_and_report_read_the_ray_backends_folder_when_it_is_the_only_sweep_here(
        tmp_path):
    # `tune --backend ray` stores in ./autolr-ray; show and report looked only at autolr.db
    from autolr import TrialConfig, TrialRecord, TuneResult

    record = TrialRecord(0, "complete", TrialConfig(1e-3).to_dict(), values=(1.0, 0.5))
    TuneResult([record], epochs=2, study_name="net").save(tmp_path / "autolr-ray" /
                                                           "net.autolr.json")
    shown = autolr_cli("show", cwd=tmp_path)
    assert shown.returncode == 0 and "1 trial: 1 complete" in shown.stdout, shown.stderr
    reported = autolr_cli("report", "-o", "r.html", cwd=tmp_path)
    assert reported.returncode == 0 and (tmp_path / "r.html").is_file(), reported.stderr
    assert not (tmp_path / "autolr.db").exists()


def test_tune_report_dash_is_refused_before_the_sweep(workdir):
    # it wrote a 4.9 MB file named '-'; `report -o -` means stdout
    done = autolr_cli("tune", "digits_model.py", "--report", "-", "--trials", "2",
                      "--epochs", "1", "--quiet", cwd=workdir)
    assert done.returncode == 2 and "--report - would mix the HTML page" in done.stderr
    assert not (workdir / "-").exists() and not (workdir / "autolr.db").exists()


def test_a_model_file_is_loaded_as_python_runs_it_and_never_overwritten(workdir):
    # a helper module beside the file imports from another working directory; a file
    # named as a library autolr imports (optuna.py) does not take its place; --report
    # onto the model file itself is refused (it replaced the user's code with HTML)
    project = workdir / "proj"
    project.mkdir()
    (project / "helpers.py").write_text("from sklearn.datasets import load_digits\n\n"
                                        "def digits():\n"
                                        "    X, y = load_digits(return_X_y=True)\n"
                                        "    return X[:300] / 16.0, y[:300]\n")
    body = MODEL_FILE.replace("def data():\n    X, y = load_digits(return_X_y=True)\n"
                              "    return X / 16.0, y", "def data():\n    return digits()")
    assert body != MODEL_FILE
    for name in ("model.py", "optuna.py"):
        (project / name).write_text("from helpers import digits\n" + body)
    quick = ("--trials", "2", "--epochs", "1", "--quiet", "--confirm-seeds", "0",
             "--no-range-test")
    for name in ("model.py", "optuna.py"):
        done = autolr_cli("tune", f"proj/{name}", *quick, cwd=workdir)
        assert done.returncode == 0, done.stderr
    code = (project / "model.py").read_text()
    refused = autolr_cli("tune", "proj/model.py", *quick, "--report", "proj/model.py",
                         cwd=workdir)
    assert refused.returncode == 2 and "is the model file of this sweep" in refused.stderr
    assert (project / "model.py").read_text() == code
    # the study is full: a call that trains nothing says so
    again = autolr_cli("tune", "proj/model.py", *quick, cwd=workdir)
    assert again.returncode == 0 and "no new search trial runs" in again.stderr
