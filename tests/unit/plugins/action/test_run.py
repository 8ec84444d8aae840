# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as AsyncStatusAction
from ansible_collections.longrun.jobs.plugins.action.run import ActionModule as RunAction
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_program

pytestmark = pytest.mark.usefixtures("collection_loader")


@pytest.fixture
def run_action(make_action):
    def make(args: dict, *, async_val: int = 10, poll: int = 0):
        return make_action(RunAction, "longrun.jobs.run", args, async_val=async_val, poll=poll)

    return make


@pytest.fixture
def wait_for_job(make_action, task_vars, janitor):
    """Wait for a launched job with longrun.jobs.async_status, then for its supervisor to be gone."""

    def wait(launched: dict) -> dict:
        status = make_action(AsyncStatusAction, "longrun.jobs.async_status", {"jid": launched["ansible_job_id"], "wait": 10})
        result = status.run(task_vars=task_vars)
        janitor.wait_until_gone(launched["job"]["pid"])
        return result

    return wait


@pytest.mark.parametrize(
    "args, async_val, fragment",
    [
        ({"ansible.builtin.copy": {"src": "a", "dest": "/tmp/b"}}, 10, "controller-side action plugin"),
        ({"ansible.builtin.command": "true", "ansible.builtin.ping": {}}, 10, "more than one module"),
        ({"ansible.builtin.command": "true", "retries_forever": 1}, 10, "unknown key(s) retries_forever"),
        ({"grace": 1}, 10, "no module to run was given"),
        ({"ansible.builtin.command": "true", "grace": -1}, 10, "grace must be 0 or more seconds, got -1"),
        ({"ansible.builtin.command": "true", "grace": "soon"}, 10, "invalid run options"),
        ({"ansible.builtin.command": "true"}, -1, "async must be 1 or more seconds, got -1"),
        ({"ansible.builtin.copy": {"src": "a", "dest": "/tmp/b"}}, 0, "controller-side action plugin"),
        ({"ansible.builtin.command": "true", "follow": True}, 10, "follow: true shows the output while the task waits"),
        ({"ansible.builtin.command": "true", "follow": True}, 0, "it needs async and poll greater than 0"),
    ],
    ids=["copy", "two-modules", "unknown-key", "no-module", "negative-grace", "bad-grace", "negative-async", "copy-sync",
         "follow-poll-0", "follow-sync"],
)
def test_bad_arguments_fail_without_a_remote_command(run_action, remote_commands, task_vars, args, async_val, fragment):
    result = run_action(args, async_val=async_val).run(task_vars=task_vars)

    assert result["failed"] is True
    assert fragment in result["msg"]
    assert "\n" not in result["msg"]
    assert remote_commands.calls == []


def test_poll_0_launches_and_returns_at_once(run_action, remote_commands, task_vars, async_dir, remote_tmp, janitor, wait_for_job):
    action = run_action({"ansible.builtin.command": "echo hello"})

    result = action.run(task_vars=task_vars)
    janitor.track_supervisor(result["job"]["pid"])

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["started"] is True
    assert result["finished"] is False
    assert result["ansible_job_id"].startswith("j")
    assert result["results_file"] == os.path.join(async_dir, result["ansible_job_id"])
    assert result["job"]["state"] == "running"
    assert result["job"]["timeout"] == 10
    # Without pipelining, but on a connection that can pipeline and without become, the launch
    # request goes over stdin: one remote command, no tmp dir.
    [call] = remote_commands.calls
    assert call["in_data"].startswith(agent_program().encode() + b"\n")
    assert b'"op": "launch"' in call["in_data"]
    assert "longrun_request" not in call["cmd"]
    assert os.listdir(remote_tmp) == []
    # Core's poller must not poll our job with stock async_status.
    assert action._task.poll == 0  # pylint: disable=protected-access

    ended = wait_for_job(result)
    assert ended["failed"] is False, ended
    assert ended["job"]["state"] == "succeeded"
    assert ended["stdout"] == "hello"
    assert ended["stdout_lines"] == ["hello"]


def test_poll_0_launch_through_a_file_without_become_removes_it_in_the_same_command(
    run_action, remote_commands, connection, task_vars, remote_tmp, janitor, wait_for_job
):
    connection.has_pipelining = False

    # The module's payload is what makes the request too large for the command line.
    task_vars["longrun_command_executor"] = False
    result = run_action({"ansible.builtin.command": "echo hello"}).run(task_vars=task_vars)
    janitor.track_supervisor(result["job"]["pid"])

    assert result.get("failed") is not True, result
    # The request is too large for the command line: mkdir, then the agent reads the file and rm follows.
    make_tmp, launch = remote_commands.calls
    assert "mkdir" in make_tmp["cmd"]
    assert launch["in_data"] is None
    assert "/longrun_request" in launch["cmd"]
    assert "; rc=$?; rm -rf " in launch["cmd"]
    assert os.listdir(remote_tmp) == []
    assert wait_for_job(result)["stdout"] == "hello"


def test_poll_0_launch_through_a_file_with_become_is_three_operations(
    run_action, remote_commands, play_context, task_vars, remote_tmp, janitor, wait_for_job
):
    # Only the play context says become (no become plugin is loaded), so commands still run as this user.
    play_context.become = True

    # The module's payload is what makes the request too large for the command line.
    task_vars["longrun_command_executor"] = False
    result = run_action({"ansible.builtin.command": "echo hello"}).run(task_vars=task_vars)
    janitor.track_supervisor(result["job"]["pid"])

    assert result.get("failed") is not True, result
    # mkdir (as the connection user), the transfer (not a command here), and the launch that removes the dir.
    make_dir, launch = remote_commands.calls
    assert make_dir["sudoable"] is False
    assert "/longrun_request" in launch["cmd"]
    assert "; rc=$?; rm -rf " in launch["cmd"]
    assert all(call.get("in_data") is None for call in remote_commands.calls)
    assert os.listdir(remote_tmp) == []
    assert wait_for_job(result)["stdout"] == "hello"


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_poll_0_launch_pipelined(run_action, task_vars, janitor, wait_for_job, pipelining):
    result = run_action({"ansible.builtin.command": "echo hello"}).run(task_vars=task_vars)
    janitor.track_supervisor(result["job"]["pid"])

    assert result["job"]["state"] == "running"
    wait_for_job(result)


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_poll_0_launch_pipelined_is_one_remote_command(
    run_action, remote_commands, task_vars, remote_tmp, janitor, wait_for_job, pipelining
):
    result = run_action({"ansible.builtin.command": "echo hello"}).run(task_vars=task_vars)
    janitor.track_supervisor(result["job"]["pid"])

    assert result.get("failed") is not True, result
    [call] = remote_commands.calls
    assert call["in_data"] is not None
    assert os.listdir(remote_tmp) == []
    assert wait_for_job(result)["stdout"] == "hello"


def test_poll_waits_for_the_end_and_removes_the_job_files(run_action, remote_commands, task_vars, async_dir):
    result = run_action({"ansible.builtin.shell": "echo out; echo err >&2"}, poll=1).run(task_vars=task_vars)

    assert result["failed"] is False, result
    assert result["finished"] is True
    assert result["changed"] is True
    assert result["rc"] == 0
    assert result["stdout_lines"] == ["out"]
    assert result["stderr_lines"] == ["err"]
    assert result["job"]["state"] == "succeeded"
    assert os.listdir(async_dir) == []
    assert len(remote_commands.calls) >= 2


def test_poll_reports_a_failed_module(run_action, task_vars):
    result = run_action({"ansible.builtin.command": "false"}, poll=1).run(task_vars=task_vars)

    assert result["failed"] is True
    assert result["finished"] is True
    assert result["rc"] == 1
    assert result["job"]["state"] == "failed"
    # The module's own msg, as stock gives it; our sentence is job.msg.
    assert result["msg"] == "non-zero return code"
    assert result["job"]["msg"] == f"job {result['ansible_job_id']} failed: non-zero return code (rc=1)"


def test_poll_reports_the_async_limit(run_action, task_vars):
    result = run_action({"ansible.builtin.command": "sleep 30", "grace": 0}, async_val=1, poll=1).run(task_vars=task_vars)

    assert result["failed"] is True
    assert result["finished"] is True
    assert result["job"]["state"] == "timed_out"
    assert "timed out after 1 s (async limit)" in result["msg"]


def test_without_async_the_module_runs_as_a_plain_task(run_action, task_vars, async_dir):
    result = run_action({"ansible.builtin.command": "echo plain"}, async_val=0).run(task_vars=task_vars)

    assert result.get("failed") is not True, result
    assert result["stdout"] == "plain"
    assert "ansible_job_id" not in result
    assert not os.path.exists(async_dir)


def test_cleanup_after_the_end_erases_the_job_files(run_action, make_action, task_vars, async_dir, janitor, wait_for_job):
    launched = run_action({"ansible.builtin.command": "true"}).run(task_vars=task_vars)
    janitor.track_supervisor(launched["job"]["pid"])
    assert wait_for_job(launched)["job"]["state"] == "succeeded"

    cleanup = make_action(AsyncStatusAction, "longrun.jobs.async_status", {"jid": launched["ansible_job_id"], "mode": "cleanup"})
    result = cleanup.run(task_vars=task_vars)

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["erased"] == launched["results_file"]
    assert os.listdir(async_dir) == []


def test_follow_interval_below_a_second_fails_without_a_remote_command(make_action, remote_commands, task_vars):
    args = {"ansible.builtin.command": "true", "follow": True, "follow_interval": 0.1}
    result = make_action(RunAction, "longrun.jobs.run", args, async_val=10, poll=5).run(task_vars=task_vars)

    assert result["failed"] is True
    assert "follow_interval must be 1 or more seconds, got 0.1" in result["msg"]
    assert remote_commands.calls == []


def test_a_followed_run_returns_the_result_of_an_unfollowed_one(run_action, task_vars):
    command = {"ansible.builtin.command": "printf 'a\\nb\\n'"}
    plain = run_action(dict(command), poll=1).run(task_vars=task_vars)
    followed = run_action(dict(command, follow=True, follow_interval=1), poll=1).run(task_vars=task_vars)

    timings = ("ansible_job_id", "results_file", "job", "start", "end", "delta", "invocation")
    assert {k: v for k, v in followed.items() if k not in timings} == {k: v for k, v in plain.items() if k not in timings}
    assert followed["stdout"] == "a\nb"
