# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Process facts on the target: boot id, process identity and process trees."""

from __future__ import annotations

import os
import signal
import time

from ansible_collections.longrun.jobs.plugins.module_utils._timing import SIGKILL_SETTLE

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
# Test-only: lets the fault suite simulate a reboot. Never set it in production.
BOOT_ID_FILE_ENV = "LONGRUN_JOBS_BOOT_ID_FILE"
_PR_SET_CHILD_SUBREAPER = 36


def read_boot_id() -> str | None:
    path = os.environ.get(BOOT_ID_FILE_ENV) or BOOT_ID_PATH
    try:
        with open(path) as handle:
            return handle.read().strip() or None
    except OSError:
        return None


def _read_stat_fields(pid: int) -> t.Optional[t.List[str]]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses; it ends at the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def _start_time_of(fields: t.Optional[t.List[str]]) -> int | None:
    return int(fields[19]) if fields and len(fields) >= 20 else None


def process_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (Linux), or None."""
    return _start_time_of(_read_stat_fields(pid))


def _probe(pid: int) -> t.Tuple[bool, t.Optional[t.List[str]]]:
    """Whether pid is a live (non-zombie) process, and its stat fields where /proc has them."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:
        pass
    fields = _read_stat_fields(pid)
    return not (fields and fields[0] == "Z"), fields


def pid_alive(pid: int) -> bool:
    return _probe(pid)[0]


def is_same_process(pid: int, start_time: int | None) -> bool:
    """True when pid is alive and, where start times are known, is the process that was recorded."""
    alive, fields = _probe(pid)
    if not alive or start_time is None:
        return alive
    current = _start_time_of(fields)
    return current is None or current == start_time


def become_child_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process instead of init (Linux only)."""
    try:
        # Imported here: status requests, which import this module too, never need it.
        import ctypes  # pylint: disable=import-outside-toplevel

        # CDLL(None) is the running program, which links libc; find_library would spawn ldconfig or gcc.
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parent_map() -> t.Dict[int, int]:
    parents: t.Dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return parents
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _read_stat_fields(int(entry))
        if fields and len(fields) > 1 and fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    return parents


def live_descendants(root_pid: int) -> t.List[int]:
    """Live (non-zombie) descendants of root_pid, found through /proc."""
    children: t.Dict[int, t.List[int]] = {}
    for pid, ppid in _parent_map().items():
        children.setdefault(ppid, []).append(pid)
    found: t.List[int] = []
    pending = list(children.get(root_pid, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def send_signal(pids: t.Iterable[int], signum: int, *, process_group: int | None = None) -> None:
    if process_group is not None:
        try:
            os.killpg(process_group, signum)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def reap_children() -> t.Dict[int, int]:
    """Reap every child that has exited; returns pid -> wait status."""
    reaped: t.Dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped[pid] = status


def terminate_tree(
    root_pid: int,
    *,
    include_root: bool = False,
    process_group: int | None,
    grace: float,
    first_signal: int = signal.SIGTERM,
    wait_for_change: t.Callable[[float], None] = time.sleep,
    poll: float = 0.2,
    on_reaped: t.Callable[[t.Dict[int, int]], None] | None = None,
    final_wait: float = SIGKILL_SETTLE,
) -> str:
    """Signal a process tree, wait up to grace for it to be gone, then SIGKILL what is left.

    The one routine that ends jobs. The tree is every live descendant of root_pid,
    with root_pid itself when include_root is set, and process_group (the job's
    own) as a whole. The supervisor passes itself as the root (the job and any
    escapee are its descendants, as it is their subreaper), a SIGCHLD wait as
    ``wait_for_change`` so that nothing busy-polls, and ``on_reaped``, which makes it
    reap the tree's dead. A mode=kill of a lost job passes the job's process as the
    root, which is not its child: it sleeps between looks and reaps nothing, as
    its caller's own children are not its to reap.
    Looks again at least every ``poll`` seconds: grandchildren may die without a
    SIGCHLD reaching us. Returns the name of the last signal sent.
    """
    tree = _Tree(root_pid, include_root=include_root, process_group=process_group)
    last = first_signal
    tree.signal(first_signal)
    if tree.wait_until_gone(grace, wait_for_change, poll, on_reaped):
        return signal_name(last)
    last = signal.SIGKILL
    tree.signal(signal.SIGKILL)
    tree.wait_until_gone(final_wait, wait_for_change, poll, on_reaped)
    return signal_name(last)


class _Tree:
    """The processes terminate_tree ends, found afresh at each look."""

    __slots__ = ("root_pid", "include_root", "process_group")

    def __init__(self, root_pid: int, *, include_root: bool, process_group: int | None) -> None:
        self.root_pid = root_pid
        self.include_root = include_root
        self.process_group = process_group

    def signal(self, signum: int) -> None:
        pids = live_descendants(self.root_pid)
        send_signal([self.root_pid, *pids] if self.include_root else pids, signum, process_group=self.process_group)

    def gone(self) -> bool:
        if self.include_root and pid_alive(self.root_pid):
            return False
        return not live_descendants(self.root_pid)

    def wait_until_gone(
        self,
        seconds: float,
        wait_for_change: t.Callable[[float], None],
        poll: float,
        on_reaped: t.Callable[[t.Dict[int, int]], None] | None,
    ) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self._reap(on_reaped)
            if self.gone():
                # Zombies of dead parents were re-parented to the reaper by now; reap them too.
                self._reap(on_reaped)
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            wait_for_change(min(remaining, poll))

    @staticmethod
    def _reap(on_reaped: t.Callable[[t.Dict[int, int]], None] | None) -> None:
        if on_reaped is None:
            return
        reaped = reap_children()
        if reaped:
            on_reaped(reaped)
