"""Where sweeps live, and how they survive dead workers.

- `open_storage`: an Optuna storage from a URL, a journal file path, or a storage object.
- `PidJournalLock`: the journal file's lock, recording its holder; a lock left by a
  process that died on this host is taken over at once, not after a 30 s grace.
- `claim_new_trials` / `ClaimingSampler` / `recover`: every trial records the process
  running it the moment Optuna creates it (a new one in the write that creates it, a
  queued one as it is popped); on (re)start, trials left RUNNING by a dead process of
  this host, or closed by Ctrl-C / SIGTERM, are marked failed and re-run exactly once,
  so a resumed sweep loses nothing and repeats nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import signal
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from autolr.delegating import DelegatingSampler
from autolr.design import RERUN_OF
from autolr.errors import AutoLRError

logger = logging.getLogger("autolr")
JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
_HOST = socket.gethostname()
_PR_SET_PDEATHSIG = 1  # prctl(2)
_OWNERLESS_GRACE = 30.0  # seconds a RUNNING trial may go without naming its process
_FOREIGN_LOCK_GRACE = 30.0  # a lock from another host (or unreadable) is broken after this
# seconds a SQLite write waits for a lock (Python's default: 5). A reader of the file (a
# report, `autolr.load`, optuna-dashboard: optuna-dashboard#545) holds it while it reads;
# past 5 s the sweep's write fails with "database is locked" and the trial with it
SQLITE_LOCK_TIMEOUT = 30.0
SCHEMA_RACE_RETRIES = 10  # tries again, 0.2 s apart, after losing a race to make the tables


def stored_file(storage: Any) -> Path | None:
    """The file a journal path or an SQLite URL keeps its sweep in; None for other
    storages (a database server, SQLite in memory, an Optuna storage object)."""
    if not isinstance(storage, (str, Path)):
        return None
    text = str(storage)
    if "://" not in text:
        return Path(text).expanduser() if text.endswith(JOURNAL_SUFFIXES) else None
    if not text.startswith("sqlite"):
        return None
    try:
        database = sqlalchemy.engine.make_url(text).database
    except Exception:  # a malformed URL: open_storage says so
        return None
    return Path(database) if database and database != ":memory:" else None


#: the files of a sweep in a Ray storage folder, `<study><suffix>` (backends/ray.py)
RAY_SWEEP_SUFFIXES = (".autolr.json", ".settings.json", ".pick.jsonl", ".cuts.jsonl")


def sweep_files(storage: Any) -> list[Path]:
    """The files a stored sweep lives in, which a report must never replace: an SQLite or
    journal file (with the journal's lock), or the sweeps' files in a Ray storage folder."""
    file = stored_file(storage)
    if file is not None:
        return [file, Path(f"{file}.lock")]
    if isinstance(storage, (str, Path)) and "://" not in str(storage):
        path = Path(storage).expanduser()
        if path.is_dir():
            return [p for p in path.iterdir() if p.name.endswith(RAY_SWEEP_SUFFIXES)]
        if path.is_file():  # a result `TuneResult.save` wrote, read as the storage
            return [path]
    return []


def open_storage(storage: Any) -> Any:
    """None (in memory), an Optuna storage URL, a journal file path (*.log), or a storage."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, (str, Path)):
        raise AutoLRError(f"storage must be an Optuna storage URL such as 'sqlite:///autolr.db',"
                          f" a journal file path ending in .log (or .journal, .jsonl), or None, "
                          f"but got {storage!r}.")
    text = str(storage)
    if "://" not in text:
        if not text.endswith(JOURNAL_SUFFIXES):
            raise AutoLRError(f"storage {text!r} is neither a database URL such as "
                              "'sqlite:///autolr.db' nor a journal file path ending in .log "
                              "(or .journal, .jsonl).")
        if not Path(text).parent.is_dir():
            raise AutoLRError(f"the folder of the journal file {text!r} does not exist; "
                              "create it or choose another path.")
        _check_is_journal(Path(text))
        try:  # the backend creates the file (opened for appending) right away
            backend = JournalFileBackend(text, PidJournalLock(text))
        except OSError as error:
            raise AutoLRError(f"cannot open the journal file {text!r} ({error.strerror}); "
                              "choose a path in a folder you can write to.") from None
        return optuna.storages.JournalStorage(backend)
    database = stored_file(text)
    if database is not None:
        _check_is_optuna_database(database, text)
    engine = ({"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT}}
              if text.startswith("sqlite") else None)
    attempt = 0
    while True:
        attempt += 1
        try:
            with warnings.catch_warnings():  # heartbeats are 'experimental' in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(text, heartbeat_interval=30, grace_period=90,
                                                  engine_kwargs=engine)
        except Exception as error:
            if _lost_schema_race(error) and attempt <= SCHEMA_RACE_RETRIES:
                time.sleep(0.2)  # another process made the tables meanwhile: they are there
                continue
            raise AutoLRError(f"cannot open storage {text!r}: {_first_line(error).rstrip('.')}. "
                              "Use a URL "
                              "such as 'sqlite:///autolr.db' or 'postgresql://user@host/db'."
                              ) from None


#: how long a file holding some of Optuna's tables is watched for the rest (see below)
SCHEMA_WAIT = 3.0
#: the tables Optuna's RDB storage makes (`optuna.storages._rdb.models`), and alembic's
OPTUNA_TABLES = frozenset({
    "studies", "study_directions", "study_system_attributes", "study_user_attributes",
    "trial_heartbeats", "trial_intermediate_values", "trial_params",
    "trial_system_attributes", "trial_user_attributes", "trial_values", "trials",
    "version_info", "alembic_version"})


def _check_is_optuna_database(path: Path, url: str) -> None:
    """An existing SQLite file must be empty or Optuna's: Optuna would add its tables to
    another program's database, or fail deep inside on a table of the same name."""
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return
    waited_until = time.monotonic() + SCHEMA_WAIT
    while True:
        try:
            # a URI, so read-only; quoted, or a '#' or '?' in the path would end it early
            with contextlib.closing(sqlite3.connect(
                    f"{path.absolute().as_uri()}?mode=ro", uri=True,
                    timeout=SQLITE_LOCK_TIMEOUT)) as connection:
                tables = {row[0] for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.OperationalError:  # locked by a writer, say: Optuna will tell
            return
        except sqlite3.DatabaseError as error:
            raise AutoLRError(f"cannot open storage {url!r}: {str(path)!r} is not an SQLite "
                              f"database ({error}); give the sweep a file of its own, such "
                              "as 'sqlite:///autolr.db'.") from None
        # some of Optuna's tables only: another process may be making them right now (not
        # in one transaction: a sweep started beside it saw 'studies' alone and refused
        # the file); a moment later they are all there, or the file is not Optuna's
        making = (tables and tables < OPTUNA_TABLES
                  and not {"studies", "version_info"} <= tables)
        if not making or time.monotonic() > waited_until:
            break
        time.sleep(0.05)
    if tables and not {"studies", "version_info"} <= tables:
        raise AutoLRError(
            f"cannot open storage {url!r}: {str(path)!r} is another program's SQLite "
            f"database (tables {', '.join(sorted(tables)[:5])}"
            f"{', ...' if len(tables) > 5 else ''}), not Optuna's, and the sweep would "
            "write its tables into it; give the sweep a file of its own, such as "
            "'sqlite:///autolr.db'.")


def _lost_schema_race(error: Exception) -> bool:
    """Two processes opening a new database at once both create Optuna's tables: the
    one that loses fails on a table or version row the other just made."""
    text = str(error)
    return isinstance(error, sqlalchemy.exc.SQLAlchemyError) and (
        "already exists" in text or "alembic_version" in text or "database is locked" in text)


def _first_line(error: Exception) -> str:
    """A database error without SQLAlchemy's statement and link lines."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(" [SQL:")[0].split(" (Background on this error")[0]


def check_writable(storage: Any) -> None:
    """Refuse, before anything is written, a journal or SQLite file (`stored_file`) a
    sweep cannot keep its trials in: a folder in its place, a folder that is missing or
    that this process cannot create files in (the file, a journal's lock file, SQLite's
    own journal), a file it cannot write. Other storages are left to `open_storage`."""
    path = stored_file(storage)
    if path is None:
        return
    where = f"cannot keep the sweep at {str(storage)!r}"
    if path.is_dir():
        raise AutoLRError(f"{where}: {str(path)!r} is a folder, not a file; give the path "
                          "of a file (a new one for a new sweep).")
    folder = path.parent
    if not folder.is_dir():
        raise AutoLRError(f"{where}: its folder {str(folder)!r} does not exist; create it or "
                          "choose another path.")
    problem = _cannot_write(folder, path)
    if problem:
        raise AutoLRError(f"{where}: {problem}; choose a path in a folder you can write to.")


def _cannot_write(folder: Path, path: Path) -> str | None:
    """Why this process cannot write `path` in `folder` (None: it can). Tried rather than
    asked (os.access): root passes every permission check, not a read-only file system."""
    probe = folder / f".autolr-write-test-{uuid.uuid4().hex}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.unlink(probe)
    except OSError as error:
        return f"no file can be created in {str(folder)!r} ({error.strerror})"
    try:  # opened for appending and closed: nothing is written
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except FileNotFoundError:
        pass  # created by the sweep
    except OSError as error:
        return f"{str(path)!r} cannot be written ({error.strerror})"
    return None


def _check_is_journal(path: Path) -> None:
    """An existing non-empty file must be an Optuna journal: a sweep would append its
    records to any other (a notes.log, say), and reading it back fails on its lines."""
    try:
        with path.open("rb") as journal:
            first = journal.readline(1 << 20)
    except FileNotFoundError:
        return
    except OSError as error:  # a folder in its place, an unreadable file
        raise AutoLRError(f"cannot read the journal file {str(path)!r} ({error.strerror}); "
                          "give the path of a file (a new one ending in .log).") from None
    if first and not _is_journal_record(first):
        raise AutoLRError(f"{str(path)!r} exists and is not an Optuna journal (its first line "
                          "is not a journal record), so autolr neither reads nor appends to it; "
                          "give a sweep's journal, or a new file ending in .log for a new sweep.")


def _is_journal_record(line: bytes) -> bool:
    if not line.endswith(b"\n"):  # another process is writing the first record right now
        return line.startswith(b'{"op_code"')
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record and "worker_id" in record


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class PidJournalLock:
    """An O_EXCL lock file holding 'host pid'. A lock whose holder died on this host is
    broken at once; one from another host, or unreadable, after a grace period.
    (Optuna's journal backend needs only acquire/release: its lock base class is private.)"""

    def __init__(self, journal_path: str) -> None:
        self._lock_file = journal_path + ".lock"

    def acquire(self) -> bool:
        sleep, waited_since = 0.001, time.monotonic()
        while True:
            try:
                fd = os.open(self._lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if self._holder_is_gone(time.monotonic() - waited_since):
                    self._break()
                    continue
                time.sleep(sleep)
                sleep = min(sleep * 2, 0.05)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{_HOST} {os.getpid()}")
            return True

    def release(self) -> None:
        self._break()

    def _holder_is_gone(self, waited: float) -> bool:
        try:
            host, pid = Path(self._lock_file).read_text().split()
            return (host == _HOST and not _alive(int(pid))) or waited > _FOREIGN_LOCK_GRACE
        except FileNotFoundError:
            return False  # released meanwhile: just retry
        except ValueError:  # being written right now, or its writer died mid-write
            return waited > _FOREIGN_LOCK_GRACE

    def _break(self) -> None:
        # rename first: of two processes breaking the same lock, only one succeeds
        doomed = f"{self._lock_file}.{uuid.uuid4().hex}.stale"
        with contextlib.suppress(FileNotFoundError):
            os.rename(self._lock_file, doomed)
            os.unlink(doomed)


class ClaimingSampler(DelegatingSampler):
    """A sampler that records which process runs each trial, so a resume can tell if it
    died. It claims in `before_trial`, which Optuna calls right after creating the trial
    and before anything else touches the storage (sampling, heartbeat, objective): a kill
    can leave a trial without an owner only in that one read's window. Otherwise it is
    `base`."""

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        study._storage.set_trial_user_attr(  # Trial is not built yet: the storage's API
            trial._trial_id, "owner", owner())
        self.base.before_trial(study, trial)


def claim_new_trials(study: optuna.Study) -> None:
    """New trials of `study` are created already naming this process, in the one write
    that creates them: `ClaimingSampler` claims right after, in a second write, and a
    kill -9 between the two (once in 17 runs of the kill test, under load) left a
    RUNNING trial no resume could tell was dead for `_OWNERLESS_GRACE`. Queued trials,
    popped rather than created, are still claimed by the sampler."""
    storage = study._storage  # Study.ask creates trials through it, with no template
    create = storage.create_new_trial

    def create_new_trial(study_id: int, template_trial: Any = None) -> int:
        if template_trial is None:
            template_trial = optuna.trial.FrozenTrial(
                number=0, trial_id=0, state=TrialState.RUNNING, value=None,
                datetime_start=datetime.now(), datetime_complete=None, params={},
                distributions={}, user_attrs={"owner": owner()}, system_attrs={},
                intermediate_values={})
        return create(study_id, template_trial)

    storage.create_new_trial = create_new_trial


def owner() -> dict[str, Any]:
    """This process, as a trial stores who runs it (a resume tells from it if it died)."""
    return {"host": _HOST, "pid": os.getpid()}


def dead(claimed: dict[str, Any]) -> bool:
    """Whether the process `owner()` described has died: known only on this host."""
    return claimed.get("host") == _HOST and not _alive(int(claimed.get("pid", 0)))


def recover(study: optuna.Study) -> int:
    """Close trials of dead processes as failed and enqueue each interrupted trial's
    params exactly once. Returns how many were re-queued. A step back the robust pick of
    a dead process queued but never started is closed too, not re-queued: the pick steps
    back anew, unpruned (popped as a plain trial it would be pruned like any)."""
    storage = study._storage  # Optuna offers no public way to close another's trial
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RERUN_OF) for t in trials}
    requeued = 0
    for trial in trials:
        if trial.state == TrialState.RUNNING and is_orphan(trial):
            with contextlib.suppress(Exception):  # another process may close it first
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        elif trial.state == TrialState.WAITING and "steps_back" in trial.user_attrs:
            if "owner" in trial.user_attrs and is_orphan(trial):
                with contextlib.suppress(Exception):  # its owner may pop it first
                    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            continue
        elif not interrupted(trial):
            continue
        if trial.number in retried or "steps_back" in trial.user_attrs:
            continue  # the pick at the end steps back anew
        # its params so far (all of them once its config was drawn): one interrupted while
        # it sampled is re-run at its planned place too (`autolr.design.planned_place`)
        study.enqueue_trial(dict(trial.params), user_attrs={RERUN_OF: trial.number},
                            skip_if_exists=False)
        retried.add(trial.number)
        requeued += 1
    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        with contextlib.suppress(Exception), warnings.catch_warnings():
            # heartbeat storages: others' dead workers (the call is 'experimental' in Optuna)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    if requeued:
        logger.info("re-running %d trial(s) interrupted before they finished", requeued)
    return requeued


def interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """Closed by Ctrl-C, SIGTERM or `recover` (its process died), not by its own error."""
    return trial.state == TrialState.FAIL and "error" not in trial.user_attrs


def is_orphan(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial whose process is gone: of this host and dead, or a RUNNING one that never
    named its process (`claim_new_trials`) for `_OWNERLESS_GRACE`. Another host's
    trial is taken as alive: its process cannot be asked."""
    claimed = trial.user_attrs.get("owner")  # what `owner()` stored
    if claimed is None:  # killed between Optuna creating it and autolr claiming it
        started = trial.datetime_start or datetime.now()
        return (datetime.now() - started).total_seconds() > _OWNERLESS_GRACE
    return dead(claimed)


def others_running(study: optuna.Study) -> int:
    """Trials another live process (not this one, nor its workers, which have ended by
    then) is running in the study: a second call on the same storage, say."""
    me = owner()
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.user_attrs.get("owner") != me and not is_orphan(t))


def die_with(parent: int) -> None:
    """Linux: this (forked) process gets SIGTERM when its parent, pid `parent`, dies (a
    SIGKILL leaves the parent no time to stop its children), instead of training on for
    nobody; elsewhere, nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's own cleanup only
        return
    if os.getppid() != parent:  # it died before the request above took effect
        os._exit(1)


def start_child(process: Any) -> None:
    """`process.start()` (a fork), with a Ctrl-C or SIGTERM that came during it raised
    here as KeyboardInterrupt. Python may run the signal's handler inside the fork's own
    callbacks (logging's lock release in the parent), where its KeyboardInterrupt is
    printed and dropped, and the sweep went on to its end (2 of 20 SIGTERMs to an
    n_jobs=2 sweep). Only for handlers that raise at once, as `sigterm_as_interrupt`'s."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    arrived: list[int] = []
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    handlers = {signum: handler for signum, handler in handlers.items() if callable(handler)}

    def noted(signum: int, frame: Any) -> None:  # the child inherits it: raises as before
        arrived.append(signum)
        handlers[signum](signum, frame)

    for signum in handlers:
        signal.signal(signum, noted)
    try:
        process.start()
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    if arrived:  # its raise was dropped, or it would not have got here
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler or `kill`) stops a sweep like Ctrl-C: the running trial is
    closed as interrupted and the process exits cleanly. Only the main thread can."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def describe_errno(error: OSError) -> str:
    return errno.errorcode.get(error.errno, str(error.errno))
