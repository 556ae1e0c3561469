"""Process helpers the tests share (pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


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


def survivors(pids: list[int], within: float) -> list[int]:
    """Those of `pids` still running after `within` seconds; they are killed (the test
    started them: it stops them, even when it fails)."""
    deadline = time.monotonic() + within
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
