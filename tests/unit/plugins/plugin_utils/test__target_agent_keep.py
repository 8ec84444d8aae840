# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The keep switch: with core's keep_remote_files on, a request runs from files that stay on the target."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as AsyncStatusAction
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import StatusReply, StatusRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils import _target_agent
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_source
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent


@pytest.fixture
def agent(make_action, task_vars):
    action = make_action(AsyncStatusAction, "longrun.jobs.async_status", {})
    return TargetAgent(action, task_vars)


@pytest.fixture
def keep_remote_files(monkeypatch) -> None:
    monkeypatch.setenv("ANSIBLE_KEEP_REMOTE_FILES", "1")


@pytest.fixture
def shown(monkeypatch) -> list:
    """What the agent shows at verbosity 1: (message, host)."""
    messages: list = []
    monkeypatch.setattr(_target_agent.display, "v", lambda msg, host=None: messages.append((msg, host)))
    return messages


def _list_jobs(agent: TargetAgent, async_dir: str) -> StatusReply:
    """One list request through the agent: the request every test here sends."""
    return agent.request(StatusRequest(mode="list", async_dir=async_dir))


def test_kept_requests_run_from_an_agent_file_and_a_request_file_that_stay(
    agent, remote_commands, connection, remote_tmp, async_dir, keep_remote_files, shown
):
    reply = _list_jobs(agent, async_dir)

    assert (reply.changed, reply.jobs, reply.async_dir) == (False, [], async_dir)
    run = remote_commands.calls[-1]
    assert run["in_data"] is None
    [kept] = os.listdir(remote_tmp)
    tmpdir = os.path.join(remote_tmp, kept)
    program = os.path.join(tmpdir, "longrun_agent.py")
    request = os.path.join(tmpdir, "longrun_request.json")
    assert sorted(os.listdir(tmpdir)) == ["longrun_agent.py", "longrun_request.json"]
    with open(program, encoding="utf-8") as source:
        assert source.read() == agent_source()
    with open(request, encoding="utf-8") as sent:
        sent_request = json.loads(sent.read())
    assert sent_request["op"] == "status"
    assert sent_request["params"]["mode"] == "list"
    command = f"{shlex.quote(agent.interpreter)} -I -S {shlex.quote(program)} < {shlex.quote(request)}"
    assert run["cmd"] == command
    # The action's tmp dir, which it removes itself, is not the kept one.
    assert connection._shell.tmpdir is None
    [(message, host)] = shown
    assert tmpdir in message and message.endswith(command)
    assert host == agent._host()


def test_the_shown_command_runs_the_request_again_by_hand(agent, async_dir, keep_remote_files, shown):
    _list_jobs(agent, async_dir)

    [(message, _host)] = shown
    command = message.split("to run the request again: ", 1)[1]
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["jobs"] == [] and "_longrun_protocol" in reply


def test_each_kept_request_has_a_dir_of_its_own_and_the_actions_tmp_dir_stays(
    agent, connection, remote_tmp, async_dir, keep_remote_files, shown
):
    action_tmpdir = agent.action._make_tmp_path()

    _list_jobs(agent, async_dir)
    _list_jobs(agent, async_dir)

    assert connection._shell.tmpdir == action_tmpdir
    kept = [os.path.join(remote_tmp, name) for name in os.listdir(remote_tmp)]
    assert len(kept) == 3
    assert sum(sorted(os.listdir(path)) == ["longrun_agent.py", "longrun_request.json"] for path in kept) == 2
    # The action's cleanup removes its own tmp dir (core reads its switch once, at start-up), never a kept one.
    agent.action.cleanup()
    for name in os.listdir(remote_tmp):
        assert sorted(os.listdir(os.path.join(remote_tmp, name))) == ["longrun_agent.py", "longrun_request.json"]
    assert len(os.listdir(remote_tmp)) == 2


def test_without_the_switch_no_request_leaves_files(agent, remote_commands, remote_tmp, async_dir, monkeypatch, shown):
    monkeypatch.setenv("ANSIBLE_KEEP_REMOTE_FILES", "0")

    _list_jobs(agent, async_dir)

    [run] = remote_commands.calls
    assert run["in_data"] is not None
    assert os.listdir(remote_tmp) == []
    assert shown == []
