# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the controller-side tests: the collection loader, process cleanup, and action plugins
built as core builds them, with a real ``local`` connection."""

from __future__ import annotations

import os
import signal
import sys
import time
import typing as t

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader, init_plugin_loader
from ansible.template import Templar
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store


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


class ProcessJanitor:
    """Kills what a test started and left behind, by pid and only if it is still the same process."""

    def __init__(self) -> None:
        self.supervisors: t.List[t.Tuple[int, t.Optional[int]]] = []
        self.pids: t.List[t.Tuple[int, t.Optional[int]]] = []
        self.groups: t.List[int] = []

    def track_supervisor(self, pid: int, start_time: t.Optional[int] = None) -> None:
        start_time = start_time if start_time is not None else _proc.process_start_time(pid)
        if start_time is not None:  # else it is gone already, and the pid may be reused
            self.supervisors.append((pid, start_time))

    def track(self, pid: int) -> None:
        self.pids.append((pid, _proc.process_start_time(pid)))

    def track_group(self, pgid: int) -> None:
        self.groups.append(pgid)

    def track_job(self, async_dir: str, jid: str, *, timeout: float = 10.0) -> t.Optional[_record.JobRecord]:
        """Track a launched job's supervisor and its job's process group; returns the record that names both.

        The supervisor releases the launcher before it starts the job, and records the job's pid just after.
        """
        record = _store.read_record(async_dir, jid)
        if record is None or record.pid is None:
            return record
        self.track_supervisor(record.pid, record.pid_start_time)
        deadline = time.monotonic() + timeout
        while record is not None and record.state == _record.RUNNING and record.job_pid is None:
            if time.monotonic() >= deadline:
                pytest.fail(f"the supervisor of {jid} did not record its job within {timeout} s")
            time.sleep(0.01)
            record = _store.read_record(async_dir, jid)
        if record is not None and record.job_pid:
            self.track_group(record.job_pid)
        return record

    @staticmethod
    def wait_until_gone(pid: int, *, timeout: float = 10.0) -> None:
        """Gone means no such process or a zombie, which only its new parent can reap."""
        deadline = time.monotonic() + timeout
        while _proc.pid_alive(pid):
            if time.monotonic() >= deadline:
                pytest.fail(f"supervisor {pid} still runs after {timeout} s")
            time.sleep(0.05)

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


@pytest.fixture
def async_dir(tmp_path) -> str:
    """Not created: the target side creates it (module_utils tests override this with a created one)."""
    return str(tmp_path / "async")


@pytest.fixture
def remote_tmp(tmp_path) -> str:
    path = tmp_path / "remote_tmp"
    path.mkdir(mode=0o700)
    return str(path)


@pytest.fixture
def play_context() -> PlayContext:
    return PlayContext()


@pytest.fixture
def pipelining(request) -> bool:
    """Off unless a test asks for it with indirect parametrization."""
    return getattr(request, "param", False)


@pytest.fixture
def connection(play_context, pipelining, async_dir, remote_tmp):
    """The real local connection; its shell keeps everything under tmp_path."""
    local = connection_loader.get("local", play_context, os.devnull)
    local.set_option("pipelining", pipelining)
    local._shell.set_option("async_dir", async_dir)  # pylint: disable=protected-access
    local._shell.set_option("remote_tmp", remote_tmp)  # pylint: disable=protected-access
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def task_vars() -> dict:
    return {"inventory_hostname": "localhost", "ansible_python_interpreter": sys.executable}


class RemoteCommandSpy:
    """Records every remote command of an action plugin and still runs it."""

    def __init__(self) -> None:
        self.calls: t.List[dict] = []

    def attach(self, action: t.Any) -> t.Any:
        run_command = action._low_level_execute_command  # pylint: disable=protected-access

        def spy(cmd, *args, **kwargs):
            self.calls.append(dict(kwargs, cmd=cmd))
            return run_command(cmd, *args, **kwargs)

        action._low_level_execute_command = spy  # pylint: disable=protected-access
        return action


@pytest.fixture
def remote_commands() -> RemoteCommandSpy:
    return RemoteCommandSpy()


@pytest.fixture
def make_action(connection, play_context, remote_commands):
    """Build an action plugin for a task, as the task executor does, with its remote commands spied on."""
    loader = DataLoader()

    def make(action_class: type, action_name: str, args: dict, **task_fields: t.Any) -> t.Any:
        task = Task()
        task.action = action_name
        task.args = args
        for name, value in task_fields.items():
            setattr(task, name, value)
        templar = Templar(loader=loader, variables={})
        action = action_class(task, connection, play_context, loader, templar, None)
        return remote_commands.attach(action)

    return make
