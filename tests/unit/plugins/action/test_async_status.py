# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as AsyncStatusAction

ACTION = "longrun.jobs.async_status"


@pytest.fixture
def async_status(make_action):
    def make(args: dict):
        return make_action(AsyncStatusAction, ACTION, args)

    return make


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"jid": "../x"}, "jid '../x' is not a job id"),
        ({"jid": "j1/../../etc/passwd"}, "is not a job id"),
        ({"jid": ""}, "jid must be a non-empty job id"),
        ({"jid": "j1.2", "wait": -1}, "wait must be 0 or more seconds, got -1"),
        ({"jid": "j1.2", "mode": "kill"}, "mode"),
        ({}, "jid"),
    ],
    ids=["dotdot", "path", "empty", "negative-wait", "bad-mode", "no-jid"],
)
def test_bad_arguments_fail_without_a_remote_command(async_status, remote_commands, task_vars, args, fragment):
    result = async_status(args).run(task_vars=task_vars)

    assert result["failed"] is True
    assert fragment in result["msg"]
    assert remote_commands.calls == []


def _assert_not_found(result: dict, async_dir: str) -> None:
    assert result["failed"] is True
    assert result["finished"] is True
    assert result["ansible_job_id"] == "j1.2"
    assert result["job"]["state"] == "not_found"
    assert result["msg"].startswith(f"job j1.2 was not found in {async_dir}")
    assert result["stdout"] == ""
    assert result["stdout_lines"] == []


def test_unknown_job_is_not_found_in_one_remote_command(async_status, remote_commands, task_vars, async_dir):
    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    [call] = remote_commands.calls
    assert call.get("in_data") is None
    _assert_not_found(result, async_dir)


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_unknown_job_is_not_found_pipelined(async_status, task_vars, async_dir, pipelining):
    _assert_not_found(async_status({"jid": "j1.2"}).run(task_vars=task_vars), async_dir)


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_pipelined_status_is_one_remote_command_with_the_program_on_stdin(
    async_status, remote_commands, task_vars, async_dir, pipelining
):
    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    [call] = remote_commands.calls
    assert isinstance(call["in_data"], bytes)
    assert '"op": "status"' in call["in_data"].decode().splitlines()[1]
    _assert_not_found(result, async_dir)


def test_cleanup_of_an_unknown_job_fails_in_one_remote_command(async_status, remote_commands, task_vars):
    result = async_status({"jid": "j3.4", "mode": "cleanup"}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["job"]["state"] == "not_found"
    assert "erased" not in result


def test_bad_interpreter_fails_with_advice(async_status, remote_commands, task_vars):
    task_vars["ansible_python_interpreter"] = "/nonexistent/python3"

    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert result["failed"] is True
    assert "did not answer" in result["msg"]
    assert "/nonexistent/python3" in result["msg"]
    assert "ansible_python_interpreter" in result["msg"]
