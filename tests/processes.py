"""Process helpers the tests share (pytest puts this folder on sys.path)."""

from __future__ import annotations

import subprocess
import sys


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def alive(pid: int) -> bool:
    """Whether `pid` runs (Linux: a zombie has stopped, only not yet been reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
