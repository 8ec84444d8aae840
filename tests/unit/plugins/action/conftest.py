# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugins built as core builds them, with a real ``local`` connection."""

from __future__ import annotations

import os
import sys
import typing as t

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar


@pytest.fixture
def async_dir(tmp_path) -> str:
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
