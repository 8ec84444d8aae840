# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for tests that touch real files and real processes."""

from __future__ import annotations

import os
import signal
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _proc, _store

WaitUntil = t.Callable[..., t.Any]


def _wait_until(
    predicate: t.Callable[[], t.Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> t.Any:
    """Poll predicate until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> WaitUntil:
    return _wait_until


@pytest.fixture
def umask_022() -> t.Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def async_dir(tmp_path, umask_022) -> str:
    return _store.ensure_async_dir(str(tmp_path / "async"))


class ProcessJanitor:
    """Kills what a test started and left behind, by pid and only if it is still the same process."""

    def __init__(self) -> None:
        self.supervisors: t.List[t.Tuple[int, t.Optional[int]]] = []
        self.pids: t.List[t.Tuple[int, t.Optional[int]]] = []
        self.groups: t.List[int] = []

    def track_supervisor(self, pid: int, start_time: t.Optional[int]) -> None:
        self.supervisors.append((pid, start_time))

    def track(self, pid: int) -> None:
        self.pids.append((pid, _proc.process_start_time(pid)))

    def track_group(self, pgid: int) -> None:
        self.groups.append(pgid)

    def cleanup(self) -> None:
        # A supervisor asked to stop ends its whole job tree and records it; give it that chance.
        for pid, start_time in self.supervisors:
            if _proc.is_same_process(pid, start_time):
                _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_proc.is_same_process(p, s) for p, s in self.supervisors):
            time.sleep(0.05)
        for pid, start_time in self.supervisors + self.pids:
            if _proc.is_same_process(pid, start_time):
                _kill(pid, signal.SIGKILL)
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


@pytest.fixture
def janitor() -> t.Iterator[ProcessJanitor]:
    keeper = ProcessJanitor()
    try:
        yield keeper
    finally:
        keeper.cleanup()
