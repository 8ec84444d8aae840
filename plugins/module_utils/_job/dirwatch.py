# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waking a waiter when a record in the async dir is replaced: inotify where Linux has it, else a short sleep."""

from __future__ import annotations

import ctypes
import os
import select
import time
import typing as t

# Records are replaced by rename, and removed by unlink.
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_DELETE = 0x00000200
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_WATCH_MASK = _IN_MOVED_FROM | _IN_MOVED_TO | _IN_DELETE
# Without inotify, how often a waiter looks again.
POLL_INTERVAL = 0.1


class DirWatch:
    """Sleeps until something in a directory was renamed or removed, or the time passes."""

    def __init__(self, path: str) -> None:
        self.fd: t.Optional[int] = _inotify_fd(path)

    @property
    def uses_inotify(self) -> bool:
        return self.fd is not None

    def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.fd is None:
            time.sleep(min(seconds, POLL_INTERVAL))
            return
        readable, _unused, _unused2 = select.select([self.fd], [], [], seconds)
        if readable:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                if not os.read(t.cast(int, self.fd), 65536):
                    return
            except BlockingIOError:
                return
            except OSError:
                return

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "DirWatch":
        return self

    def __exit__(self, *exc_info: t.Any) -> None:
        self.close()


def _inotify_fd(path: str) -> t.Optional[int]:
    """An inotify descriptor watching path, or None where inotify cannot be used (then callers poll)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    fd = init(_IN_NONBLOCK | _IN_CLOEXEC)
    if fd < 0:
        return None
    if add_watch(fd, os.fsencode(path), _WATCH_MASK) < 0:
        os.close(fd)
        return None
    return fd
