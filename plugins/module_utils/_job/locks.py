# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Locks that a supervisor takes before its job starts and holds until it exits (run's lock option).

A lock is a file ``<async_dir>/.locks/<name>`` locked with ``flock``: the kernel drops the lock
with the last descriptor, so a supervisor killed with SIGKILL never leaves a stale lock. The
files are never removed nor replaced: a waiter holds a descriptor of that very file.

Presets name the package managers' own locks:
- ``dpkg`` also holds dpkg's frontend lock for the job's life, and the job runs with
  ``DPKG_FRONTEND_LOCKED=1``: dpkg inside the job works, any other dpkg or apt waits or fails.
- ``apt``, ``rpm`` (``dnf``, ``yum``): apt and rpm take their lock themselves and hand it to no
  child, so the preset only waits until their lock is free and holds the longrun lock of its
  family (``dpkg`` for apt, ``rpm``), so that longrun jobs of a family never overlap.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
import sys

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

LOCKS_DIR = ".locks"
FILE_MODE = 0o600
# How often a waiting supervisor tries its next lock again.
POLL_INTERVAL = 0.1

DPKG_FRONTEND_LOCK = "/var/lib/dpkg/lock-frontend"
RPM_LOCKS = ("/var/lib/rpm/.rpm.lock", "/usr/lib/sysimage/rpm/.rpm.lock")
# Preset: (the longrun lock it holds, the system lock files (first that exists), "hold" or "probe", what).
PRESETS = {
    "dpkg": ("dpkg", (DPKG_FRONTEND_LOCK,), "hold", "dpkg"),
    "apt": ("dpkg", (DPKG_FRONTEND_LOCK,), "probe", "dpkg"),
    "rpm": ("rpm", RPM_LOCKS, "probe", "rpm"),
    "dnf": ("rpm", RPM_LOCKS, "probe", "rpm"),
    "yum": ("rpm", RPM_LOCKS, "probe", "rpm"),
}
# What the job's environment gains while the dpkg preset holds dpkg's frontend lock (see dpkg(1)).
DPKG_ENVIRONMENT = {"DPKG_FRONTEND_LOCKED": "1"}


class LockError(ValueError):
    """A lock option that cannot be used; the message names the problem and the fix."""


def normalize_locks(value: t.Any) -> t.List[str]:
    """The lock option (a name or a list of names) as a sorted list without repeats; raises LockError."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)):
        raise LockError(
            f"lock must be a lock name or a list of lock names, not {type(value).__name__} (such as lock: backup)"
        )
    result: t.List[str] = []
    for name in names:
        try:
            _record.validate_name(name)
        except _record.InvalidName:
            raise LockError(
                f"lock name {name!r} is not valid: use 1 to 100 letters, digits and _ . @ + = -, starting with "
                "a letter, digit or _ (such as 'backup' or the preset 'dpkg')"
            ) from None
        if name not in result:
            result.append(name)
    families: t.Dict[str, str] = {}
    for name in result:
        own = PRESETS[name][0] if name in PRESETS else name
        if own in families:
            raise LockError(
                f"the locks {families[own]!r} and {name!r} are the same lock ({own!r}): keep one of them"
            )
        families[own] = name
    return sorted(result, key=family)


def family(name: str) -> str:
    """The longrun lock that a lock name takes: its own, or its preset's."""
    return PRESETS[name][0] if name in PRESETS else name


class Busy:
    """The lock a supervisor waits for, and who holds it when that is known."""

    __slots__ = ("lock", "holder", "holder_pid")

    def __init__(self, lock: str, holder: t.Optional[str] = None, holder_pid: t.Optional[int] = None) -> None:
        self.lock = lock
        self.holder = holder
        self.holder_pid = holder_pid

    def as_dict(self) -> dict:
        return {"lock": self.lock, "holder": self.holder, "holder_pid": self.holder_pid}

    def describe(self) -> str:
        if self.holder:
            return f"the lock {self.lock!r} held by job {self.holder}" + (
                f" (supervisor pid {self.holder_pid})" if self.holder_pid else ""
            )
        if self.holder_pid:
            return f"the lock {self.lock!r} held by process {self.holder_pid}"
        return f"the lock {self.lock!r}"


class _Step:
    """One lock to take: a longrun lock file, or a system lock (held or probed)."""

    __slots__ = ("lock", "path", "kind", "fd", "held")

    def __init__(self, lock: str, path: str, kind: str, fd: int) -> None:
        self.lock = lock
        self.path = path
        # "own": our flock file; "hold": a system lock held with lockf; "probe": a system lock tried and released.
        self.kind = kind
        self.fd = fd
        self.held = False


class LockSet:
    """The locks of one job, opened (and checked) at once, then taken in order by take()."""

    def __init__(self, async_dir: str, names: t.Sequence[str], jid: str) -> None:
        self.jid = jid
        self.names = normalize_locks(list(names))
        self.environment: t.Dict[str, str] = {}
        self._steps: t.List[_Step] = []
        try:
            system: t.List[_Step] = []
            for name in self.names:
                own = family(name)
                self._steps.append(_Step(name, *_own_lock(async_dir, own)))
                if name in PRESETS:
                    _own, paths, kind, what = PRESETS[name]
                    system.append(_Step(name, *_system_lock(paths, kind, what, name)))
                    if kind == "hold" and what == "dpkg":
                        self.environment.update(DPKG_ENVIRONMENT)
            # System locks last: no longrun job waits for one of ours while holding a system lock.
            self._steps.extend(system)
        except BaseException:
            self.close()
            raise

    def take(self) -> t.Optional[Busy]:
        """Take the next locks in order without blocking; None once all are held, else the lock that is busy."""
        for step in self._steps:
            if step.held:
                continue
            if step.kind == "own":
                try:
                    fcntl.flock(step.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return Busy(step.lock, *_holder_of(step.path))
                step.held = True
                _write_holder(step.fd, self.jid)
            else:
                try:
                    fcntl.lockf(step.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    return Busy(step.lock, None, _posix_lock_holder(step.fd))
                if step.kind == "probe":
                    # rpm and apt take their lock themselves: seeing it free is all the preset does.
                    fcntl.lockf(step.fd, fcntl.LOCK_UN)
                step.held = True
        return None

    def close(self) -> None:
        """Release every lock (the supervisor's exit does the same)."""
        for step in self._steps:
            try:
                os.close(step.fd)
            except OSError:
                pass
        self._steps = []


def _own_lock(async_dir: str, name: str) -> t.Tuple[str, str, int]:
    try:
        directory = _store.ensure_private_subdir(async_dir, LOCKS_DIR, what="locks dir", keeps="the job locks")
    except _store.StoreError as exc:
        raise LockError(str(exc)) from None
    path = os.path.join(directory, name)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        raise LockError(
            f"cannot open the lock file {path} ({exc.strerror or exc}): remove it if it is not a file"
        ) from None
    return path, "own", fd


def _system_lock(paths: t.Sequence[str], kind: str, what: str, name: str) -> t.Tuple[str, str, int]:
    for path in paths:
        try:
            # Never created: the package manager's lock file exists wherever it is installed.
            fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            continue
        except PermissionError:
            raise LockError(
                f"the lock preset {name!r} needs {path}, which uid {os.geteuid()} cannot open for writing: "
                "run the task as root (become: true)"
            ) from None
        except OSError as exc:
            raise LockError(f"the lock preset {name!r} cannot open {path}: {exc.strerror or exc}") from None
        return path, kind, fd
    raise LockError(
        f"the lock preset {name!r} found no {what} on this host ({' nor '.join(paths)} is missing): "
        f"use it only on hosts with {what}, or use a lock name of your own"
    )


def _write_holder(fd: int, jid: str) -> None:
    """Tell waiters who holds the lock: written in place, the file is the lock."""
    data = json.dumps({"jid": jid, "pid": os.getpid()}).encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass


def _holder_of(path: str) -> t.Tuple[t.Optional[str], t.Optional[int]]:
    """The jid and supervisor pid that the holder of a longrun lock wrote, when readable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            data = json.loads(os.read(fd, 4096).decode("utf-8"))
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    jid, pid = data.get("jid"), data.get("pid")
    return (
        jid if isinstance(jid, str) and _record.is_jid(jid) else None,
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
    )


def _posix_lock_holder(fd: int) -> t.Optional[int]:
    """The pid holding a POSIX lock on the file (F_GETLK), on 64-bit Linux; else None."""
    if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
        return None
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
    layout = "hhqqi4x"
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        lock_type, _whence, _start, _length, pid = struct.unpack(layout, answer)
    except (OSError, struct.error):
        return None
    return pid if lock_type != fcntl.F_UNLCK and pid > 0 else None
