"""Files autolr writes for the user (the report, a saved result): checked before the work
that fills them, so a typo in the path is an error up front, not after a sweep."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterable
from pathlib import Path

from autolr.errors import AutoLRError

#: a file name to suggest for each kind of file written (a report, a saved result)
_EXAMPLE_NAMES = {"report": "autolr-report.html", "result": "autolr-result.json"}
#: how a file autolr may replace begins (lower-cased, leading blanks left out): a report
#: replaces an HTML page (an earlier report), a saved result an earlier one; anything
#: else is the user's (another sweep's storage, a script) and is refused
_REPLACEABLE = {"report": (b"<!doctype html", b"<html"),
                "result": (b'{\n "format": "autolr.tuneresult/', b'{"format": "autolr.tuneresult/')}


def check_output_file(path: str | os.PathLike, what: str,
                      keep: Iterable[Path] = ()) -> Path:
    """`path` as a Path, if `what` can be written there (missing folders are made later)
    and it is none of the files to `keep` (a sweep's storage); else an AutoLRError saying
    why and what to give instead."""
    try:
        return _checked_output_file(path, what, keep)
    except OSError as error:  # a name too long, say: stat() raises it, not just open()
        raise AutoLRError(f"cannot write the {what} to {os.fspath(path)!r}: "
                          f"{error.strerror or error}; give another path.") from None


def _checked_output_file(path: str | os.PathLike, what: str, keep: Iterable[Path]) -> Path:
    example = _EXAMPLE_NAMES.get(what, "autolr-out")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise AutoLRError(f"the {what} path must be a file name such as {example!r}, but got "
                          f"{path!r}.")
    if os.fspath(path).endswith(("/", os.sep)):  # a folder's path: Path would drop the slash
        raise AutoLRError(f"cannot write the {what} to {os.fspath(path)!r}: it names a "
                          f"folder; give a file name in it, such as "
                          f"{os.path.join(os.fspath(path), example)!r}.")
    path = Path(path).expanduser()
    if path.is_dir():
        raise AutoLRError(f"cannot write the {what} to {str(path)!r}: it is a folder; give a "
                          f"file name in it, such as {str(path / example)!r}.")
    if any(_same_file(path, Path(kept).expanduser()) for kept in keep):
        raise AutoLRError(f"cannot write the {what} to {str(path)!r}: it is where the sweep "
                          f"is stored, and writing it would destroy every trial; give "
                          f"another file name, such as {example!r}.")
    check_folder(path.parent, what, shown=path)
    if path.exists() and not os.access(path, os.W_OK):
        raise AutoLRError(f"cannot write the {what} to {str(path)!r}: {str(path)!r} is not "
                          "writable; give a path you can write to.")
    if is_stream(path):
        return path
    target = Path(os.path.realpath(path))  # a symlink's: the file the write goes to
    _check_replaceable(target, what, path, example)
    if target.parent != path.parent.resolve():  # else checked just above
        check_folder(target.parent, what, shown=path)
    if target.is_file():  # root passes os.access; an append-only or immutable file does not
        try:
            os.close(os.open(target, os.O_WRONLY))  # opened, nothing written
        except OSError as error:
            raise AutoLRError(f"cannot write the {what} to {str(path)!r}: "
                              f"{error.strerror or error}; give a path you can write to."
                              ) from None
    replaced = target.is_file() and target.stat().st_nlink == 1  # else written in place
    if target.parent.is_dir() and (replaced or not target.exists()):
        # a file named as the write's first one, so a name one too long fails here too
        _try_creating(_partial(target, "probe"), what, path)
    return path


def _check_replaceable(target: Path, what: str, shown: Path, example: str) -> None:
    """An AutoLRError if `target` holds something other than what a `what` replaces
    (`_REPLACEABLE`): a report pointed at another sweep's journal or SQLite file, or at a
    script, replaced it with HTML without a word (helper-40)."""
    if what not in _REPLACEABLE or not target.is_file() or target.stat().st_size == 0:
        return
    try:
        with open(target, "rb") as stream:
            start = stream.read(256).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    except OSError:  # unreadable: the write will tell
        return
    if not start.startswith(_REPLACEABLE[what]):
        kind = "an HTML page" if what == "report" else "a result autolr saved"
        raise AutoLRError(f"cannot write the {what} to {str(shown)!r}: the file there is not "
                          f"{kind}, and writing would replace what it holds; give another "
                          f"file name, such as {example!r}, or remove the file first.")


def _partial(target: Path, kind: str = "partial") -> Path:
    """Where the text is written before it replaces `target` in one rename (or, `kind`
    "probe", a name as long to try first)."""
    # cut to 200 bytes: a name near the file system's 255-byte limit would not fit with
    # the suffix (a multibyte name is cut whole characters at a time)
    cut = target.name.encode()[:200].decode(errors="ignore")
    tail = secrets.token_hex(3) if kind == "probe" else ""
    return target.with_name(f".{cut}.{os.getpid()}.{kind}{tail}")


def _try_creating(probe: Path, what: str, shown: Path) -> None:
    """Create and remove `probe`, or an AutoLRError: os.access trusts root, and knows
    nothing of a read-only or virtual file system (/proc), of a folder where files cannot
    be removed or renamed (append-only), or of a name too long."""
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        probe.unlink()
    except OSError as error:
        raise AutoLRError(f"cannot write the {what} to {str(shown)!r}: "
                          f"{error.strerror or error}; give a path you can write to.") from None


def _same_file(path: Path, other: Path) -> bool:
    """One file by two names: the same path once resolved, or a hard link."""
    if path.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them is not there yet
        return False


def check_folder(folder: Path, what: str, shown: Path | None = None) -> None:
    """An AutoLRError about writing the `what` to `shown` (default: `folder`) unless the
    nearest folder of `folder` that exists (where missing ones get made) is a folder this
    process can write in."""
    shown = folder if shown is None else shown
    nearest = folder
    while not nearest.exists():
        nearest = nearest.parent
    if not nearest.is_dir():
        raise AutoLRError(f"cannot write the {what} to {str(shown)!r}: {str(nearest)!r} is a "
                          "file, not a folder.")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise AutoLRError(f"cannot write the {what} to {str(shown)!r}: {str(nearest)!r} is not "
                          "writable; give a path you can write to.")
    _try_creating(nearest / f".autolr-probe.{os.getpid()}.{secrets.token_hex(3)}", what, shown)


def write_output_file(path: str | os.PathLike, what: str, text: str) -> Path:
    """Write `text` to `path` (after `check_output_file`), making missing folders. The
    file is whole or not there: a kill mid-write leaves the previous one (the Ray backend
    rewrites its saved sweep after each trial), never half of it; a file it replaces keeps
    its permissions. A symlink is written through; a file with other hard links, and a
    device or pipe such as /dev/stdout, are written in place."""
    path = check_output_file(path, what)
    # through a symlink: the file it points to is written (the rename would replace the
    # link itself); a device, a pipe or a process's open file (-o /dev/stdout, whatever
    # its output goes to) is written in place, after what it holds
    target = Path(os.path.realpath(path))
    partial = _partial(target)
    try:
        if (target.exists() and not target.is_file()) or is_stream(Path(path)):
            if _is_stdout(path):  # one file offset with print(): nothing overwrites it
                sys.stdout.write(text)
                sys.stdout.flush()
            else:
                with open(path, "a", encoding="utf-8") as stream:
                    stream.write(text)
            return path
        existing = target.stat() if target.is_file() else None
        if existing is not None and existing.st_nlink > 1:  # a rename would break the link
            target.write_text(text, encoding="utf-8")
            return path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        if existing is not None:  # the file it replaces keeps its permissions
            os.chmod(partial, stat.S_IMODE(existing.st_mode))
        os.replace(partial, target)
    except OSError as error:  # e.g. a full disk, or a race with the checks above
        with contextlib.suppress(OSError):
            partial.unlink()
        raise AutoLRError(f"cannot write the {what} to {str(path)!r}: "
                          f"{error.strerror or error}") from None
    return path


def is_stream(path: str | os.PathLike) -> bool:
    """/dev/stdout, /dev/fd/N, /proc/self/fd/N: a name for an open file of a process (a
    terminal, a pipe, or a file its output is redirected to), not a file to replace. (A
    file on /dev/shm is a file.)"""
    absolute = os.path.abspath(path)
    return (absolute in ("/dev/stdout", "/dev/stderr", "/dev/tty")
            or re.fullmatch(r"/dev/fd/\d+|/proc/(self|\d+)/fd/\d+", absolute) is not None)


def _is_stdout(path: str | os.PathLike) -> bool:
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # a captured or closed stdout
        return False
