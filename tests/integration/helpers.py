"""Process inspection and polling helpers for integration tests.

Import them in a test module with ``from helpers import pids_alive, wait_until``.
``tests/integration`` has no ``__init__.py`` on purpose: its ``conftest.py`` puts
this directory on ``sys.path`` (pytest's default "prepend" import mode does the
same, and the explicit insert keeps ``--import-mode=importlib`` working), so
``pytest tests/integration`` from the repository root can import these modules
by their bare names.

Everything here reads ``/proc`` directly, so it only works on Linux.
"""

from __future__ import annotations

import os
import signal
import time
import typing as t
from pathlib import Path

T = t.TypeVar("T")

PROC = Path("/proc")


def _read_stat(pid: int) -> tuple[str, int] | None:
    """Return (state, ppid) of a process, or None when it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name sits in parentheses and may itself contain spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0], int(fields[1])


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _cmdline(pid: int) -> str | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def pids_alive(pids: t.Iterable[int]) -> list[int]:
    """Return those of ``pids`` that still run.

    Zombies count as dead: they have exited, and orphans may never be reaped
    because PID 1 in a container is not always a real init.
    """
    alive = []
    for pid in pids:
        stat = _read_stat(pid)
        if stat is not None and stat[0] not in ("Z", "X"):
            alive.append(pid)
    return alive


def wait_until(
    predicate: t.Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    *,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises AssertionError after ``timeout`` seconds so a test fails with a
    readable message instead of hanging.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout:g}s: {what}")
        time.sleep(interval)


def pids_with_cmdline(substring: str) -> list[int]:
    """Return live processes whose command line contains ``substring``.

    The calling process is left out: pytest's own argv often mentions the
    string being searched for.
    """
    own = os.getpid()
    found = []
    for pid in _all_pids():
        if pid == own:
            continue
        cmdline = _cmdline(pid)
        if cmdline and substring in cmdline and pids_alive([pid]):
            found.append(pid)
    return found


def process_exists_with_cmdline(substring: str) -> bool:
    """Tell whether any live process other than this one mentions ``substring``."""
    return bool(pids_with_cmdline(substring))


def descendant_pids(pid: int) -> list[int]:
    """Return all live descendants of ``pid``, parents before children."""
    children: dict[int, list[int]] = {}
    for candidate in _all_pids():
        stat = _read_stat(candidate)
        if stat is not None:
            children.setdefault(stat[1], []).append(candidate)
    found: list[int] = []
    queue = list(children.get(pid, []))
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children.get(current, []))
    return pids_alive(found)


def terminate_pids(pids: t.Iterable[int], *, grace: float = 5.0) -> None:
    """SIGTERM ``pids``, then SIGKILL whatever is still alive after ``grace`` seconds."""
    remaining = pids_alive(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in remaining:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while remaining and time.monotonic() < deadline:
            time.sleep(0.05)
            remaining = pids_alive(remaining)
        if not remaining:
            return
