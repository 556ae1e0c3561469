"""python -m benchmarks: autolr against what users do instead, on the same tasks and budgets.

    python -m benchmarks oracle [--task digits] [--recompute]   # the grid (cached)
                                [--rerun-diverged]              # after a divergence-rule change
    python -m benchmarks replay [--task digits] [--seeds 30]    # samplers/pruners, seconds
    python -m benchmarks live [--task digits] [--seeds 3]       # real sweeps + baselines
                              [--resume]                        # only seeds not yet scored
    python -m benchmarks finder [--task digits] [--seeds 3]     # LR finder vs the oracle
    python -m benchmarks start [--task digits] [--seeds 100]    # small budgets: the start
    python -m benchmarks report [--offline]                     # tables + HTML plot
    python -m benchmarks [all]                                  # all six, every task
    python -m benchmarks --quick                                # a tiny end-to-end run

Everything is cached under benchmarks/cache/ (or --cache): the oracle grid per task
(<task>.json, only extended unless --recompute) and the scored sweeps (results.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import torch

from benchmarks import tasks
from benchmarks.oracle import CACHE, GridCache

QUICK = {"task": ["tiny"], "replay_seeds": 4, "live_seeds": 1, "max_fte": 8.0,
         "live_sweeps": ["autolr", "optuna-tpe-median", "random"]}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("autolr").setLevel(logging.ERROR)
    live_contenders = args.contenders
    if args.quick:
        args.task = args.task or QUICK["task"]
        args.max_fte = args.max_fte or QUICK["max_fte"]
        live_contenders = live_contenders or ",".join(QUICK["live_sweeps"] + ["baselines"])
    names = args.task or ["digits", "diabetes", "mnist1d"]
    cache_dir = Path(args.cache) if args.cache else CACHE
    results_path = cache_dir / "results.json"
    log = print if not args.quiet else (lambda message: None)
    commands = ["oracle", "replay", "live", "finder", "start", "report"] if (
        args.command == "all") else [
        args.command]
    for command in commands:
        started = time.perf_counter()
        if command == "oracle":
            for name in names:
                _oracle(name, cache_dir, args.recompute, log, args.rerun_diverged)
        elif command == "replay":
            seeds = args.seeds or (QUICK["replay_seeds"] if args.quick else 30)
            for name in names:
                _replay(name, cache_dir, results_path, seeds, args.max_fte or 40.0,
                        None if args.command == "all" else args.contenders, log)
        elif command == "live":
            seeds = args.seeds or (QUICK["live_seeds"] if args.quick else 3)
            for name in names:
                _live(name, cache_dir, results_path, seeds, args.max_fte or 20.0,
                      live_contenders, args.resume, log)
        elif command == "finder":
            seeds = args.seeds or (1 if args.quick else 3)
            for name in names:
                _finder(name, cache_dir, results_path, seeds, log)
        elif command == "start":
            seeds = args.seeds or (QUICK["replay_seeds"] if args.quick else 100)
            for name in names:
                _start(name, cache_dir, results_path, seeds, args.max_fte or 20.0, log)
        else:
            _report(results_path, cache_dir, names, args.offline, print)
        log(f"[{command} done in {time.perf_counter() - started:.0f} s]")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="all",
                        choices=["all", "oracle", "replay", "live", "finder", "start", "report"])
    parser.add_argument("--task", action="append", choices=list(tasks.TASKS),
                        help="a task (repeatable); default: digits, diabetes, mnist1d")
    parser.add_argument("--seeds", type=int,
                        help="sweep seeds (replay 30, live 3), range-test seeds (finder 3)")
    parser.add_argument("--max-fte", type=float, help="budget per sweep (replay 40, live 20)")
    parser.add_argument("--contenders", help="comma-separated names (default: all); live "
                        "takes 'baselines' for the default config and the LR-finder picks")
    parser.add_argument("--recompute", action="store_true", help="retrain the oracle grid")
    parser.add_argument("--rerun-diverged", action="store_true",
                        help="oracle: train again every cached run that diverged (after a "
                        "change to autolr's divergence rule), then confirm the new top")
    parser.add_argument("--resume", action="store_true",
                        help="live: keep each contender's stored sweeps, run only the seeds "
                        "beyond them (and those an older scorer left a metric out of)")
    parser.add_argument("--cache", help=f"cache folder (default {CACHE})")
    parser.add_argument("--offline", action="store_true",
                        help="embed plotly.js in the HTML plot (~4 MB) instead of its CDN")
    parser.add_argument("--quick", action="store_true",
                        help="tiny task, few seeds: an end-to-end check in seconds")
    parser.add_argument("--quiet", action="store_true")
    return parser


def _cache(name: str, cache_dir: Path) -> GridCache:
    return GridCache(tasks.get(name), cache_dir / f"{name}.json")


def _oracle(name: str, cache_dir: Path, recompute: bool, log,
            rerun_diverged: bool = False) -> None:
    from benchmarks import oracle

    path = cache_dir / f"{name}.json"
    if recompute and path.exists():
        path.unlink()
    cache = _cache(name, cache_dir)
    if rerun_diverged:
        trained = oracle.rerun_diverged(cache.task, cache, log=log)
        log(f"{name}: {trained} diverged runs trained again")
    cache = oracle.build(cache.task, cache, log=log)
    key, value = cache.oracle()
    log(f"{name}: oracle {key} = {value:.4f} (mean of {len(cache.runs[key])} seeds); "
        f"cache {path} ({path.stat().st_size / 1e3:.0f} kB)")


def _ready(name: str, cache_dir: Path, log) -> GridCache:
    cache = _cache(name, cache_dir)
    task = cache.task
    missing = sum(len(cache.runs.get(k, {})) < task.grid_seeds
                  for k in map(_key, task.configs()))
    if missing or cache.missing_rungs():
        log(f"{name}: the oracle grid is incomplete ({missing} configs, "
            f"{len(cache.missing_rungs())} budgeted-rung runs); building it first")
        _oracle(name, cache_dir, False, log)
        cache = _cache(name, cache_dir)
    return cache


def _key(config) -> str:
    from benchmarks.tasks import key_of

    return key_of(config)


def _replay(name: str, cache_dir: Path, results_path: Path, seeds: int, max_fte: float,
            contenders: str | None, log) -> None:
    from benchmarks import replay
    from benchmarks.contenders import DEFAULT_REPLAY, RECIPES

    recipes = contenders.split(",") if contenders else list(DEFAULT_REPLAY)
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:  # before the grid is built: that can take long
        raise SystemExit(f"unknown replay contender {unknown[0]!r}; "
                         f"choose from: {', '.join(RECIPES)}")
    cache = _ready(name, cache_dir, log)
    log(f"{name}: replay of {len(recipes)} contenders x {seeds} seeds, up to {max_fte:g} FTE")
    scored = replay.replay(cache, recipes, range(seeds), max_fte, log=log)
    results = _load(results_path)
    entry = results.setdefault("replay", {}).setdefault(name, {"recipes": {}})
    entry.update({"seeds": seeds, "max_fte": max_fte, "oracle": _oracle_info(cache)})
    entry["recipes"].update({k: [s.to_json() for s in v] for k, v in scored.items()})
    _save(results_path, results)


def _live(name: str, cache_dir: Path, results_path: Path, seeds: int, max_fte: float,
          contenders: str | None, resume: bool, log) -> None:
    from benchmarks import baselines, live

    wanted = _live_contenders(name, contenders, log)  # before the grid: that can take long
    cache = _ready(name, cache_dir, log)
    info = {"seeds": seeds, "max_fte": max_fte, "oracle": _oracle_info(cache)}

    def store(key: str, value: dict) -> None:
        # read just before writing: a replay or another live run may have saved meanwhile
        results = _load(results_path)
        entry = results.setdefault("live", {}).setdefault(name, {"sweeps": {}})
        entry.update(info)
        entry[key] = value if key == "baselines" else {**entry.get(key, {}), **value}
        _save(results_path, results)

    stored = _load(results_path).get("live", {}).get(name, {})
    if resume and stored.get("sweeps") and stored.get("max_fte") != max_fte:
        raise SystemExit(f"--resume: {name}'s stored live sweeps ran to "
                         f"{stored.get('max_fte')} FTE, not {max_fte:g}; drop --resume or "
                         "pass their --max-fte")
    for contender in wanted:
        if contender == "baselines":
            continue
        # a sweep's seed is its index: resumed rows are the first seeds, kept as they were
        # unless an older scorer left out a metric (then that seed runs again)
        rows = list(stored.get("sweeps", {}).get(contender, []))[:seeds] if resume else []
        kept = [seed for seed, row in enumerate(rows) if _scored_now(row)]
        if kept:
            log(f"  {name} live {contender}: keeping {len(kept)} stored sweeps")
        rows += [{}] * (seeds - len(rows))
        for seed in (s for s in range(seeds) if s not in kept):
            sweep = live.run(contender, cache.task, seed, max_fte)
            metrics = live.score(sweep, cache, max_fte)
            rows[seed] = {**metrics.to_json(), "wall": sweep.wall,
                          "fte": sweep.fte / cache.task.epochs}
            log(f"  {name} live {contender} seed {seed}: {len(sweep.events)} trials, "
                f"{sweep.wall:.0f} s, regret @20 {metrics.regret[20.0]:+.1%}")
        store("sweeps", {contender: rows})
    if "baselines" in wanted:  # the default and the LR-finder picks
        scored = baselines.score_baselines(cache, range(seeds), log=log)
        store("baselines", {k: [s.to_json() for s in v] for k, v in scored.items()})


def _live_contenders(name: str, contenders: str | None, log) -> list[str]:
    """The live contenders to run on task `name`: those named, else every one but the
    side notes (two trials at once; autolr's default space off digits); Ray's only with
    Ray installed."""
    from benchmarks import live

    wanted = (contenders.split(",") if contenders else
              [*(c for c in live.SWEEPS if c not in live.ON_REQUEST), "baselines"])
    for contender in [c for c in wanted if c in live.NEEDS_RAY]:
        if not live.ray_available():
            log(f"ray is not installed: skipping the {contender} contender")
            wanted.remove(contender)
    if name != "digits" and "autolr-default-space" in wanted and not contenders:
        wanted.remove("autolr-default-space")  # a side note, shown on digits only
    unknown = [c for c in wanted if c not in (*live.SWEEPS, "baselines")]
    if unknown:
        raise SystemExit(f"unknown live contender {unknown[0]!r}; "
                         f"choose from {', '.join(live.SWEEPS)}, baselines")
    return wanted


LIVE_VERSUS = ("5", "10", "20", "final")  # the live budgets autolr is compared at


def _live_regrets(sweeps: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Each live sweep's regret at `LIVE_VERSUS`, keyed as `start.versus` reads them; a
    sweep stored before the final pick was recorded leaves it out (its contender then is
    not compared there)."""
    return {name: [{**{b: row["regret"].get(f"{float(b)}") for b in LIVE_VERSUS[:-1]},
                    **({"final": row["final_regret"]} if "final_regret" in row else {})}
                   for row in rows] for name, rows in sweeps.items()}


def _scored_now(row: dict) -> bool:
    """Whether a stored live sweep has every metric the scorer records today."""
    from benchmarks.accounting import SweepMetrics

    return bool(row) and all(f.name in row for f in dataclasses.fields(SweepMetrics))


def _finder(name: str, cache_dir: Path, results_path: Path, seeds: int, log) -> None:
    from benchmarks import finder

    cache = _ready(name, cache_dir, log)
    rows = finder.measure(cache, range(seeds), log=log)
    results = _load(results_path)
    results.setdefault("finder", {})[name] = {"seeds": seeds, "rows": rows}
    _save(results_path, results)


def _start(name: str, cache_dir: Path, results_path: Path, seeds: int, max_fte: float,
           log) -> None:
    from benchmarks import start

    cache = _ready(name, cache_dir, log)
    found = start.measure(cache, range(seeds), max_fte=max_fte, log=log)
    results = _load(results_path)
    results.setdefault("start", {})[name] = {"seeds": seeds, "recipes": found}
    _save(results_path, results)


def _report(results_path: Path, cache_dir: Path, names: list[str], offline: bool,
            out) -> None:
    from benchmarks import baselines, finder, live, report, start
    from benchmarks.accounting import SweepMetrics
    from benchmarks.contenders import RECIPES

    results = _load(results_path)
    panels: dict[str, dict[str, report.Row]] = {}
    replay_described = {k: r.description for k, r in RECIPES.items()}
    live_described = {**live.DESCRIPTIONS, **baselines.DESCRIPTIONS}
    for name in names:
        replayed = results.get("replay", {}).get(name)
        lived = results.get("live", {}).get(name)
        if not (replayed or lived):
            continue
        oracle = (replayed or lived)["oracle"]
        out(f"\n### {name}: oracle {oracle['key']} = {oracle['mean']:.4f} "
            f"(seed mean of {oracle['seeds']} runs)\n")
        if "floor" in oracle:
            floor = oracle["floor"]
            out(f"Noise floor: exhaustive single-seed grid search ({oracle['configs']} FTE, "
                "best final loss of one seed's runs) recommends a config with regret "
                + ", ".join(f"{r:+.1%}" for r in floor) + f" on the {len(floor)} grid seeds "
                f"({sum(r <= 0.05 for r in floor)}/{len(floor)} within 5%).\n")
        if "pick_floor" in oracle:
            key, regret = oracle["pick_floor"]
            out(f"Pick floor: judged on its mean over the {oracle['grid_seeds']} grid seeds "
                "replay reads, and kept 1.5x below the learning rates that diverged, or "
                "nearly did (a setback), on them (autolr's margin), the best grid config is "
                f"{key} (regret {regret:+.1%} on "
                "all its seeds): a replayed sweep that searched the whole grid and whose "
                "robust pick saw every seed replay has would recommend it.\n")
        panel = panels.setdefault(name, {})
        if replayed:
            rows = [report.summarise(k, [SweepMetrics.from_json(s) for s in v])
                    for k, v in replayed["recipes"].items()]
            out(f"Replay: median over {replayed['seeds']} sweep seeds, budget "
                f"{replayed['max_fte']:g} FTE\n")
            out(report.markdown(rows, max_fte=replayed["max_fte"]))
            panel.update({f"replay {row.name}": row for row in rows})
        if lived:
            rows = [report.summarise(k, [SweepMetrics.from_json(s) for s in v])
                    for k, v in lived["sweeps"].items()]
            rows += [report.summarise(k, [SweepMetrics.from_json(s) for s in v])
                     for k, v in lived.get("baselines", {}).items()]
            out(f"\nLive: median over {_seed_counts(lived)}, budget {lived['max_fte']:g} FTE "
                "(baselines: their own cost)\n")
            out(report.markdown(rows, max_fte=lived["max_fte"], winners=False))
            walls = {k: sorted(s["wall"] for s in v) for k, v in lived["sweeps"].items()}
            out("\nWall-clock seconds of a whole live sweep (median): " + ", ".join(
                f"{k} {v[len(v) // 2]:.0f} s for "
                f"{sorted(s['fte'] for s in lived['sweeps'][k])[len(v) // 2]:.1f} FTE"
                for k, v in walls.items()))
            compared = _live_regrets(lived["sweeps"])
            for other in ("optuna-tpe-median", "random"):
                out("\n" + start.versus_line(compared, "autolr", other, LIVE_VERSUS).rstrip())
            panel.update({f"live {row.name}": row for row in rows})
        started = results.get("start", {}).get(name)
        if started:
            out(f"\nHow the sweep starts (`python -m benchmarks start`): median regret of the "
                f"incumbent, no robust pick, over {started['seeds']} sweep seeds (in brackets: "
                f"the share of sweeps within {start.WITHIN:.0%} of the oracle)\n")
            out(start.markdown(started["recipes"]))
            out(start.versus_line(started["recipes"]))
        tested = results.get("finder", {}).get(name)
        if tested:
            task = tasks.get(name)
            out(f"\nLR range test vs the oracle's best lr per batch size (median of "
                f"{tested['seeds']} range tests; ✗: more than {finder.WINDOW:g} decades off, "
                "so a 3-decade prior centred there would cut the optimum out)\n")
            out(finder.markdown(tested["rows"], task_epochs=task.epochs,
                                space_top=max(task.grid.lrs)))
    for mode, described in (("replay", replay_described), ("live", live_described)):
        seen = {label.split(" ", 1)[1] for panel in panels.values() for label in panel
                if label.startswith(mode)}
        if seen:
            out(f"\n{mode.capitalize()} contenders:\n")
            out("\n".join(f"- **{k}**: {v}" for k, v in described.items() if k in seen))
    if panels:
        path = report.write_html(report.figure(panels, "autolr benchmarks: regret vs compute"),
                                 cache_dir / "regret.html", offline=offline)
        out(f"\nplot: {path}")


def _seed_counts(lived: dict) -> str:
    """'10 seeds', or '10 seeds (3: ray-asha)' when some rows were run on fewer (a later
    run with more seeds re-runs only the contenders it is given)."""
    rows = {**lived["sweeps"], **lived.get("baselines", {})}
    fewer: dict[int, list[str]] = {}
    for name, sweeps in rows.items():
        if len(sweeps) != lived["seeds"]:
            fewer.setdefault(len(sweeps), []).append(name)
    return f"{lived['seeds']} seeds" + (" (" + "; ".join(
        f"{count}: {', '.join(names)}" for count, names in sorted(fewer.items())) + ")"
        if fewer else "")


def _oracle_info(cache: GridCache) -> dict:
    from benchmarks.replay import noise_floor, pick_floor

    key, value = cache.oracle()
    return {"key": key, "mean": value, "seeds": len(cache.runs[key]),
            "configs": len(cache.runs), "floor": noise_floor(cache),
            "pick_floor": pick_floor(cache), "grid_seeds": cache.task.grid_seeds}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _save(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, separators=(",", ":")), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
