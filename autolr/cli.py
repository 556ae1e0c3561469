"""The `autolr` command: tune a model file, report or show a stored sweep, list presets.

    autolr tune examples/cli_model.py --trials 40 --epochs 20 --report report.html
    autolr show --storage sqlite:///autolr.db --study cli_model
    autolr report --storage sqlite:///autolr.db --study cli_model -o report.html
    autolr spaces

A model file (or importable module) defines `model()` -> torch.nn.Module and `data()` ->
anything `autolr.tune` accepts ((X, y), ((X_train, y_train), (X_val, y_val)), a Dataset).
Every CLI sweep is stored (a SQLite file in the working directory by default), so an
interrupted one resumes by running the same command again.

Exit codes: 0 success, 1 failure, 2 bad usage or bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import math
import os
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

DEFAULT_STORAGE = "sqlite:///autolr.db"
DEFAULT_RAY_STORAGE = "autolr-ray"  # Ray keeps its experiments in a directory
logger = logging.getLogger("autolr")


class _UsageError(Exception):
    """Bad usage found after parsing (exit 2, like argparse's own errors)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad usage
    args.sweep_started = False
    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(message)s")
    from autolr.errors import AutoLRError, SweepStopped

    try:
        return args.run(args, argv)
    except SweepStopped as error:  # not bad input: what ran is kept, the same command resumes
        print(f"autolr {args.command}: error: {error}\nResume with:\n  autolr "
              f"{shlex.join(argv)}", file=sys.stderr)
        return 1
    except (_UsageError, AutoLRError) as error:
        print(f"autolr {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.sweep_started and _kept_a_trial(args):
            print("\nautolr: interrupted; every finished trial is kept in the storage. "
                  f"Resume with:\n  autolr {shlex.join(argv)}", file=sys.stderr)
        else:  # still loading, or before any trial finished: nothing to resume
            print("\nautolr: interrupted" + (" before any trial finished: no trial is kept."
                                              if args.sweep_started else "."), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `autolr show | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0


def _kept_a_trial(args: argparse.Namespace) -> bool:
    """Does the interrupted sweep's storage hold a finished trial? True when unsure."""
    from autolr.errors import AutoLRError

    try:
        import autolr

        return bool(autolr.load(args.storage_used, args.study_used).records)
    except AutoLRError:  # no such file or study yet
        return False
    except (Exception, KeyboardInterrupt):  # unreadable, or a second Ctrl-C: say how to resume
        return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autolr", description="Find the learning rate, schedule, warmup and batch size "
        "of a PyTorch model.", epilog="Run 'autolr COMMAND --help' for a command's options.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tune = commands.add_parser(
        "tune", help="run (or resume) a sweep on a model file",
        description="Tune a model file: FILE.py (or package.module) defines model() and data(). "
        "Re-running the same command resumes the stored sweep; more --trials extends it.")
    tune.add_argument("target", metavar="FILE.py|module", help="the file or module to tune")
    tune.add_argument("--model-fn", default="model", help="name of the model factory (model)")
    tune.add_argument("--data-fn", default="data", help="name of the data function (data)")
    tune.add_argument("--trials", type=_positive, default=40, help="trials in all (40)")
    tune.add_argument("--epochs", type=_positive, default=20, help="epochs per trial (20)")
    tune.add_argument("--timeout", type=_seconds, default=None,
                      help="start no new trial after this many seconds (the robust pick "
                           "and range test still run)")
    tune.add_argument("--space", default="default",
                      help="a preset name (see 'autolr spaces'; default: default) or a path "
                           "to a .toml file")
    tune.add_argument("--metric", default=None,
                      help="val_loss (default), accuracy, mse, mae or r2")
    _storage_options(tune, study_required=False)
    tune.add_argument("--jobs", type=_positive, default=1,
                      help="worker processes (1; the Optuna backend)")
    tune.add_argument("--backend", choices=("optuna", "ray"), default="optuna")
    tune.add_argument("--ray-address", default=None, help="Ray cluster address (host:port)")
    tune.add_argument("--max-concurrent", type=_positive, default=None,
                      help="trials at once on Ray (default: the cluster's CPUs)")
    tune.add_argument("--seed", type=_whole_number(0, 2**32 - 1), default=0)
    tune.add_argument("--pruner", default="auto",
                      help="auto (default: checked_halving), decay_median, median, "
                           "successive_halving, hyperband, budgeted or none (see the README)")
    tune.add_argument("--confirm-seeds", type=_non_negative, default=None,
                      help="extra seeds the best config is re-trained on before it is "
                           "recommended (default: tune's, 2; 0: off)")
    tune.add_argument("--no-range-test", dest="range_test", action="store_false",
                      help="skip the LR range test run after the sweep for the report")
    tune.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    tune.add_argument("--report", metavar="OUT.html", default=None, help="write the HTML report")
    tune.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    tune.set_defaults(run=_tune)

    report = commands.add_parser(
        "report", help="write the HTML report of a stored sweep",
        description="Write the one-file offline HTML report of a sweep stored by 'autolr tune' "
        "(or autolr.tune with a storage): no training is run.")
    _storage_options(report, study_required=False)
    report.add_argument("-o", "--output", default="autolr-report.html",
                        help="the HTML file (autolr-report.html; -: standard output)")
    report.set_defaults(run=_report)

    show = commands.add_parser(
        "show", help="the best trials of a stored sweep, as a table",
        description="Print a stored sweep's summary and its best trials, best first.")
    _storage_options(show, study_required=False)
    show.add_argument("--top", type=_positive, default=10, help="rows to show (10)")
    show.set_defaults(run=_show)

    spaces = commands.add_parser("spaces", help="list the preset search spaces")
    spaces.set_defaults(run=_spaces)
    return parser


def _storage_options(parser: argparse.ArgumentParser, *, study_required: bool) -> None:
    parser.add_argument("--storage", default=None, type=_not_empty("--storage"),
                        help="Optuna storage URL or journal file (*.log), or a Ray backend's "
                        f"directory (default: {DEFAULT_STORAGE}; tune --backend ray: "
                        f"./{DEFAULT_RAY_STORAGE})")
    parser.add_argument("--study", default=None, required=study_required,
                        type=_not_empty("--study"),
                        help="study name (tune: the file's name; others: the only study)")


def _not_empty(flag: str) -> Callable[[str], str]:
    """An option that names something: an empty value (an unset shell variable) silently
    meant the default study or storage."""
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{flag} needs a name, but got an empty one; "
                                             f"leave {flag} out for the default")
        return text
    return parse


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    # said as the flag's, before loading torch: tune's own check names its parameter
    wanted = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected seconds > 0 (leave --timeout out for none),"
                                         f" got {text!r}")
    return value


_positive = _whole_number(1)
_non_negative = _whole_number(0)


def _tune(args: argparse.Namespace, argv: list[str]) -> int:
    # SIGTERM (a scheduler stopping the job) ends the sweep like Ctrl-C: trials kept.
    # Set first: loading torch and the data takes seconds, and should stop as cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import autolr
    from autolr.output_file import check_output_file

    study = args.study or study_name_of(args.target)
    storage = args.storage or (DEFAULT_RAY_STORAGE if args.backend == "ray"
                               else DEFAULT_STORAGE)
    if args.report == "-":  # its summary and code go to stdout: no room for a page there
        raise _UsageError("--report - would mix the HTML page with the summary on stdout; "
                          "give a file name (or write it after with `autolr report -o -`).")
    if args.report:  # a path the report cannot go to fails now, not after the sweep
        from autolr.storage import sweep_files

        for given, what in ((args.target, "the model file"), (args.space, "the space file")):
            if given and given.endswith((".py", ".toml")) and os.path.exists(given) \
                    and os.path.exists(args.report) and os.path.samefile(given, args.report):
                raise _UsageError(f"--report {args.report} is {what} of this sweep: the report "
                                  "would replace it; give another file name, such as "
                                  "report.html.")
        check_output_file(args.report, "report", keep=sweep_files(storage))
    module = _load_target(args.target)
    if args.backend == "ray" and args.target.endswith(".py"):
        _ship_by_value(module)
    model_fn = _function(module, args.model_fn, "--model-fn", "a model factory: def model(): ...")
    data_fn = _function(module, args.data_fn, "--data-fn", "a data function: def data(): ...")
    data = _user_code(lambda: data_fn(), f"{args.data_fn}() in {args.target}")
    args.sweep_started, args.storage_used, args.study_used = True, storage, study
    from autolr._tune import IN_SUMMARY

    def not_in_summary(record: logging.LogRecord) -> bool:  # said once: printed below
        return not getattr(record, IN_SUMMARY, False)

    logger = logging.getLogger("autolr")  # for this call only: the command runs in tests too
    logger.addFilter(not_in_summary)
    try:
        result = autolr.tune(model_fn, data, space=args.space, epochs=args.epochs,
                             n_trials=args.trials, timeout=args.timeout, metric=args.metric,
                             storage=storage, study_name=study, n_jobs=args.jobs,
                             seed=args.seed, progress=not args.quiet, device=args.device,
                             backend=args.backend, ray_address=args.ray_address,
                             max_concurrent=args.max_concurrent, pruner=args.pruner,
                             range_test=args.range_test, **({} if args.confirm_seeds is None
                                else {"confirm_seeds": args.confirm_seeds}))
    finally:
        logger.removeFilter(not_in_summary)
    if result.best_record is not None:  # else tune has logged the summary and the failures
        print(result.summary())
        print("\nUse it in plain PyTorch:\n" + result.code())
    if args.report:
        print()
        _say_written(result.report(args.report))
    return 0 if result.best_record is not None else 1


def _report(args: argparse.Namespace, argv: list[str]) -> int:
    import autolr

    output = "/dev/stdout" if args.output == "-" else args.output  # `-o - | ...`
    _say_written(autolr.report(args.storage or _default_storage(), args.study, output))
    return 0


def _show(args: argparse.Namespace, argv: list[str]) -> int:
    import autolr

    result = autolr.load(args.storage or _default_storage(), args.study)
    print(result.summary())
    print(format_table(result, args.top))
    return 0


def _default_storage() -> str:
    """Where `tune` stores by default: autolr.db, or with only the Ray backend's folder
    here (`tune --backend ray`), that folder."""
    if not Path(DEFAULT_STORAGE.removeprefix("sqlite:///")).exists() \
            and Path(DEFAULT_RAY_STORAGE).is_dir():
        return DEFAULT_RAY_STORAGE
    return DEFAULT_STORAGE


def _say_written(path: Path) -> None:
    """Where the report went; on stderr when it went to a stream (-o /dev/stdout), so
    the line does not end up inside the HTML."""
    from autolr.output_file import is_stream

    print(f"report: {path}", file=sys.stderr if is_stream(path) else sys.stdout)


def _spaces(args: argparse.Namespace, argv: list[str]) -> int:
    import autolr

    presets = autolr.presets()
    width = max(map(len, presets))
    for name, description in presets.items():
        print(f"{name:<{width}}  {description}")
    return 0


def format_table(result: Any, top: int) -> str:
    """The `top` best finished trials, one line each: the recommended one first, marked
    (a better single run the robust pick passed over would otherwise top the list), then
    complete ones by value."""
    from autolr.result import percent

    sign = 1.0 if result.direction == "minimize" else -1.0
    best = result.best_record
    ranked = sorted(result.records, key=lambda r: (  # no value (diverged at once) last
        r is not best, r.state != "complete", r.final_value is None,
        sign * r.final_value if r.final_value is not None else 0.0))
    header = (f"{'#':>4}  {'state':<9} {result.metric:>17}  {'lr':>9}  {'schedule':<16} "
              f"{'warmup':>6}  {'batch':>5}  {'epochs':>6}")
    lines = [header, "-" * len(header)]
    for r in ranked[:top]:
        p = r.params
        value = f"{r.final_value:.4g}" if r.final_value is not None else "-"
        if r.holdout_values and r.state == "complete":  # the value the report gives too
            value = f"{r.expected_value:.4g} held out"
        elif r.seed_std is not None:  # a seed mean (the robust pick)
            value = f"{value}±{r.seed_std:.1g}"
        number = f"*{r.number}" if r is best else str(r.number)
        lines.append(
            f"{number:>4}  {r.state:<9} {value:>17}  "
            + (f"{p['lr']:>9.3g}  {p['schedule']:<16} {percent(p['warmup_fraction']):>6}  "
               f"{p['batch_size']:>5}  " if p else f"{'-':>9}  {'-':<16} {'-':>6}  {'-':>5}  ")
            + f"{r.epochs_run:>6.3g}")
    if best is not None:
        lines.append("* recommended" + (" (the robust pick)" if best.seed_values else "")
                     + "; the others by their value")
    return "\n".join(lines)


def study_name_of(target: str) -> str:
    """The study a target's sweep is stored under: the file's name, or the whole dotted
    module name (pkg.mod_a and pkg.mod_b are two sweeps), dots as underscores."""
    name = Path(target).stem if target.endswith(".py") else target
    return name.replace(".", "_")


def _load_target(target: str) -> ModuleType:
    """A model file by path, or a module by dotted name (found from the working directory
    too, as `python -m` would: the `autolr` script's own folder is not the project's)."""
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise _UsageError(f"no such file: {target}")
        spec = importlib.util.spec_from_file_location(_module_name(path), path)
        module = importlib.util.module_from_spec(spec)
        sys.modules.setdefault(spec.name, module)  # so worker processes can find it
        # its folder first on the path while it loads, as `python FILE.py` puts it: a
        # helper module beside the file imports (from any working directory, and by the
        # `autolr` command); then taken off, so that a file there named as a library
        # autolr imports later (sklearn.py) is not taken for it
        folder = str(path.resolve().parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        try:
            _user_code(lambda: spec.loader.exec_module(module), target)
        finally:
            if added and folder in sys.path:
                sys.path.remove(folder)
        return module
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        found = importlib.util.find_spec(target)
    except ModuleNotFoundError as error:  # its package is missing, or its package's code
        found = None if target.startswith(f"{error.name}.") else True  # imports a missing one
    except Exception:  # noqa: BLE001 (its package's code raised: shown as the user's below)
        found = True
    if found is None:
        raise _UsageError(f"cannot import {target!r} (no such module from {Path.cwd()}); "
                          "give a path to a .py file or an importable module name")
    return _user_code(lambda: importlib.import_module(target), target)


def _module_name(path: Path) -> str:
    """The name a model file is loaded under: its own (its functions keep the names a
    stored sweep compares), unless another module has it (a file named optuna.py or
    sklearn.py took the library's place, and autolr's own import of it failed)."""
    import importlib.machinery

    folder = path.resolve().parent
    elsewhere = [entry for entry in sys.path
                 if Path(entry or ".").resolve() != folder]  # the file's own folder left out
    taken = path.stem in sys.modules or path.stem in sys.builtin_module_names
    try:
        taken = taken or importlib.machinery.PathFinder.find_spec(path.stem, elsewhere) is not None
    except (ImportError, ValueError):
        pass
    return f"autolr_model_file_{path.stem}" if taken else path.stem


def _ship_by_value(module: ModuleType) -> None:
    """A model file's code goes to the Ray cluster by value: its nodes have the file's
    module only under a name they cannot import (it is no package of theirs)."""
    try:
        from ray import cloudpickle
    except ImportError:  # tune says how to install Ray
        return
    if sys.modules.get(module.__name__) is module:  # not a same-named module's stand-in
        cloudpickle.register_pickle_by_value(module)


def _user_code(call: Callable[[], Any], where: str) -> Any:
    """Run the user's code (loading the model file, calling data()): an exception in it is
    bad input (exit 2), shown with its traceback, which points into their code; unless
    Ctrl-C (or SIGTERM) came while it ran. An interrupt inside an extension module's
    import (torch's numpy) leaves it half-loaded, and what raises next is an ImportError
    or a RecursionError: it was shown as the file's error, with a 900-line traceback."""
    interrupted = []

    def interrupt(signum: int, frame: Any) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    handlers = _replace_interrupt_handlers(interrupt)
    try:
        return call()
    except SystemExit as exit_:  # a script's own ending, run as it is imported: exit 3, silent
        raise _UsageError(
            f"{where} called sys.exit({exit_.code!r}) while autolr ran it; " + (
                "it must return the data, (X, y) or a Dataset" if "()" in where else
                "a model file is imported, so its script part (training, argument parsing) "
                "must sit under `if __name__ == \"__main__\":`")) from None
    except Exception as error:
        if interrupted:
            raise KeyboardInterrupt from None
        # from the user's code on: this function's frame is not theirs
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        raise _UsageError(f"{where} raised {type(error).__name__}: {error} (traceback above)"
                          ) from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _replace_interrupt_handlers(handler: Callable[[int, Any], None]) -> dict[int, Any]:
    """Put `handler` in place of the signals that interrupt as Ctrl-C does (SIGINT, and
    SIGTERM where `_tune` made it so); returns those it replaced: none outside the main
    thread (tests calling the CLI from one), where signals cannot be set."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is signal.default_int_handler:
            replaced[signum] = signal.signal(signum, handler)
    return replaced


def _function(module: ModuleType, name: str, option: str, example: str) -> Callable:
    function = getattr(module, name, None)
    if not callable(function):
        raise _UsageError(f"{module.__name__} defines no function {name}(); add {example} "
                          f"or name yours with {option}")
    return function


if __name__ == "__main__":
    sys.exit(main())
