# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the controller-side tests: the collection loader and supervisor cleanup."""

from __future__ import annotations

import os
import signal
import time
import typing as t

import pytest

from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.longrun.jobs.plugins.module_utils import _proc


@pytest.fixture(scope="session")
def collection_loader() -> t.Iterator[None]:
    """Ansible's collection finder, which the module and action loaders need to resolve ansible.builtin names."""
    installed_here = AnsibleCollectionConfig.collection_finder is None
    if installed_here:
        init_plugin_loader()
    try:
        yield
    finally:
        if installed_here:
            _AnsibleCollectionFinder._remove()  # pylint: disable=protected-access


class SupervisorKeeper:
    """Waits for the supervisors that a test launched to end, and stops those still running afterwards."""

    def __init__(self) -> None:
        self.tracked: t.List[t.Tuple[int, t.Optional[int]]] = []

    def track(self, pid: int) -> None:
        start_time = _proc.process_start_time(pid)
        if start_time is not None:  # else it is gone already, and the pid may be reused
            self.tracked.append((pid, start_time))

    def wait_until_gone(self, pid: int, *, timeout: float = 10.0) -> None:
        """Gone means no such process or a zombie, which only its new parent can reap."""
        deadline = time.monotonic() + timeout
        while _proc.pid_alive(pid):
            if time.monotonic() >= deadline:
                pytest.fail(f"supervisor {pid} still runs after {timeout} s")
            time.sleep(0.05)

    def cleanup(self) -> None:
        for pid, start_time in self.tracked:
            if _proc.is_same_process(pid, start_time):
                # SIGTERM asks the supervisor to end its job tree and record the end.
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for pid, start_time in self.tracked:
            while _proc.is_same_process(pid, start_time) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _proc.is_same_process(pid, start_time):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def supervisors() -> t.Iterator[SupervisorKeeper]:
    keeper = SupervisorKeeper()
    try:
        yield keeper
    finally:
        keeper.cleanup()
