"""No process outlives the stack that started it, even when `recap up` itself is killed with SIGKILL (no handler
runs then). Each child asks the kernel for SIGKILL when its parent dies (shared/deathsig.py; a Celery pool child
asks too), and `recap up` writes its children's process groups to
<var>/stack.pids: the next start kills whatever a killed one left behind."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)


def record(path: Path, groups: Iterable[int]) -> None:
    """Writes this `recap up`'s pid and its children's process groups (each child leads its own)."""
    path.write_text(json.dumps({"pid": os.getpid(), "groups": sorted(set(groups))}))


def clear(path: Path) -> None:
    path.unlink(missing_ok=True)


def reap(path: Path) -> int:
    """Kills what an earlier `recap up` on the same var/ left running; refuses while that one still lives.
    Returns how many processes it killed."""
    try:
        earlier = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return 0
    if _alive(int(earlier["pid"])):
        raise RuntimeError(f"another recap up (pid {earlier['pid']}) runs on {path.parent}; stop it first")
    killed = 0
    for pid in _members(set(earlier["groups"])):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    if not Path("/proc").is_dir():  # no way to check who is in a group: trust the recorded ids
        for group in earlier["groups"]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
    if killed:
        log.warning("killed %d process(es) an earlier recap up left running", killed)
    clear(path)
    return killed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return b"recap" in _cmdline(pid)


def _members(groups: set[int]) -> list[int]:
    """Live processes in `groups` that are ours (a Python or redis-server command line): a group id reused by
    someone else's processes is left alone."""
    found = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else []:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) in groups and any(m in _cmdline(pid) for m in (b"python", b"redis-server")):
                found.append(pid)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
