# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Planning a launch with a real action plugin and starting it through the real agent."""

from __future__ import annotations

import base64
import re
import sys
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.action.run import ActionModule as RunAction
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import LaunchReply, LaunchRequest, StatusRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import (
    LaunchPlan,
    launch,
    named_job_options,
    plan_launch,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent

pytestmark = pytest.mark.usefixtures("collection_loader")

ECHO = RunRequest("ansible.builtin.command", {"_raw_params": "echo hi"}, {})


@pytest.fixture
def action(make_action):
    made = make_action(RunAction, "longrun.jobs.run", {}, async_val=10, poll=0)
    try:
        yield made
    finally:
        made.cleanup(force=True)


@pytest.fixture
def prepare(action, async_dir, task_vars):
    def build(request: RunRequest = ECHO, **options) -> LaunchPlan:
        values = dict(timeout=7, grace=2, async_dir=async_dir, task_vars=task_vars)
        values.update(options)
        return plan_launch(action, request, **values)

    return build


@pytest.fixture
def run_until_end(action, task_vars, async_dir, janitor):
    """Launch with the real agent and wait for the job's end."""

    def run(plan: LaunchPlan) -> dict:
        agent = TargetAgent(action, task_vars, interpreter=plan.interpreter)
        launched = launch(agent, plan)
        assert launched.failed is not True, launched
        janitor.track_supervisor(launched.job["pid"])
        reply = agent.request(StatusRequest(jids=[launched.ansible_job_id], single=True, wait=20, async_dir=async_dir))
        janitor.wait_until_gone(launched.job["pid"])
        (entry,) = reply.jobs
        return entry.fields()

    return run


def module_path(task_vars: dict) -> dict:
    """The task vars with the command executor switched off: the command module is built and shipped."""
    return dict(task_vars, longrun_command_executor=False)


def test_plan_launch_builds_the_launch_request(prepare, async_dir, task_vars):
    plan = prepare(task_vars=module_path(task_vars))

    params = plan.request.fields()
    assert set(params) == {"style", "interpreter", "payload", "jid", "async_dir", "timeout", "grace", "args_data",
                           "no_log", "command", "name", "on_existing", "locks", "lock_timeout", "lease"}
    assert params["command"] is None
    assert params["no_log"] is False
    assert params["args_data"] is None
    assert params["style"] == "new"
    assert params["interpreter"] == task_vars["ansible_python_interpreter"]
    assert plan.interpreter == task_vars["ansible_python_interpreter"]
    assert re.fullmatch(r"j[0-9]{1,12}", params["jid"])
    assert (params["async_dir"], params["timeout"], params["grace"]) == (async_dir, 7, 2)
    assert base64.b64decode(params["payload"], validate=True)


def test_plan_launch_gives_every_job_its_own_id(prepare):
    assert len({prepare().request.jid for _attempt in range(5)}) == 5


def test_the_job_makes_its_own_tmp_dir(action, prepare, task_vars):
    task_tmp = action._make_tmp_path()

    payload = base64.b64decode(prepare(task_vars=module_path(task_vars)).request.payload)

    # The task's tmp dir is removed when the task returns, long before the job ends.
    assert b'"_ansible_tmpdir": null' in payload
    assert task_tmp.rstrip("/").encode() not in payload


def test_plan_launch_leaves_the_request_alone(prepare):
    request = RunRequest("ansible.builtin.command", {"_raw_params": "echo hi"}, {})
    prepare(request)
    assert request == RunRequest("ansible.builtin.command", {"_raw_params": "echo hi"}, {})


def test_a_planned_launch_runs_the_module(prepare, run_until_end):
    entry = run_until_end(prepare())

    assert entry["job"]["state"] == "succeeded"
    assert entry["result"]["stdout"] == "hi"
    assert entry["job"]["timeout"] == 7


def test_the_task_settings_reach_the_module(make_action, async_dir, task_vars, run_until_end):
    checking = make_action(RunAction, "longrun.jobs.run", {}, async_val=10, poll=0, check_mode=True)
    plan = plan_launch(checking, ECHO, timeout=7, grace=2, async_dir=async_dir, task_vars=task_vars)

    entry = run_until_end(plan)

    assert entry["job"]["state"] == "succeeded"
    assert entry["result"].get("stdout", "") == ""
    assert "check mode" in entry["result"]["msg"]


def test_a_launch_the_target_refuses_is_failed(action, prepare, task_vars, async_dir):
    plan = prepare(task_vars=module_path(task_vars))
    plan.request = plan.request.replace(interpreter="/nonexistent/python3")

    launched = launch(TargetAgent(action, task_vars, interpreter=sys.executable), plan)

    assert launched.failed is True
    assert launched.msg.startswith(
        "cannot launch the job: cannot start the module with interpreter '/nonexistent/python3'"
    )
    assert launched.ansible_job_id is None


ANY_LAUNCH = LaunchRequest(jid="j1", async_dir="/async", timeout=1, grace=0, interpreter="python3", payload="")


class AnsweringAgent:
    """Stands in for the target when it answers without a job id, which the real agent never does."""

    def __init__(self, reply: dict) -> None:
        self.reply = reply

    def request(self, request: t.Any) -> LaunchReply:
        assert request.op == "launch"
        return LaunchReply.from_wire(dict(self.reply))


@pytest.mark.parametrize(
    "reply, msg",
    [
        ({"changed": True}, "No job id was returned by the async task"),
        ({"changed": True, "msg": "odd reply"}, "No job id was returned by the async task: odd reply"),
        ({"failed": True}, "the job could not be launched"),
        ({"failed": True, "msg": "no space left"}, "no space left"),
    ],
)
def test_a_reply_without_a_job_id_is_a_failure(reply, msg):
    launched = launch(AnsweringAgent(reply), LaunchPlan(request=ANY_LAUNCH, interpreter=None))
    assert launched.failed is True
    assert launched.msg == msg


def test_a_command_job_goes_to_the_executor_without_a_module(prepare, task_vars):
    plan = prepare()

    params = plan.request.fields()
    assert (params["style"], params["payload"], params["interpreter"]) == ("command", "", "")
    assert plan.interpreter is None
    assert params["command"]["params"]["_raw_params"] == "echo hi"
    assert params["command"]["params"]["strip_empty_ends"] is True


def test_the_executor_runs_the_command_with_the_module_result(prepare, run_until_end):
    entry = run_until_end(prepare())

    assert entry["job"]["executor"] == "command"
    assert entry["result"]["stdout"] == "hi"
    assert entry["result"]["cmd"] == ["echo", "hi"]
    # ansible-core 2.21 injects invocation only when asked (INJECT_INVOCATION).
    invocation = entry["result"].get("invocation", {"module_args": {"_raw_params": "echo hi"}})
    assert invocation["module_args"]["_raw_params"] == "echo hi"


def test_check_mode_runs_the_module(make_action, async_dir, task_vars):
    checking = make_action(RunAction, "longrun.jobs.run", {}, async_val=10, poll=0, check_mode=True)
    plan = plan_launch(checking, ECHO, timeout=7, grace=2, async_dir=async_dir, task_vars=task_vars)

    assert plan.request.style == "new"


def test_a_command_the_target_cannot_run_is_launched_as_the_module(prepare, run_until_end):
    plan = prepare(RunRequest("ansible.builtin.command", {"_raw_params": "longrun-no-such-program"}, {}))
    assert plan.request.style == "command"

    entry = run_until_end(plan)

    # The module's own failure, in its own words.
    assert "executor" not in entry["job"]
    assert entry["result"]["failed"] is True
    assert entry["result"]["rc"] == 2


@pytest.mark.parametrize("executor", [True, False])
def test_a_named_launch_request_carries_the_name_and_on_existing(prepare, task_vars, executor):
    request = RunRequest("ansible.builtin.command", {"_raw_params": "echo hi"}, {"name": "db", "on_existing": "skip"})

    plan = prepare(request, task_vars=task_vars if executor else module_path(task_vars))

    assert (plan.request.name, plan.request.on_existing) == ("db", "skip")
    if executor:
        assert plan.module_plan is not None
        assert (plan.module_plan().request.name, plan.module_plan().request.on_existing) == ("db", "skip")


def test_an_unnamed_launch_attaches_by_default_and_has_no_name(prepare):
    assert (prepare().request.name, prepare().request.on_existing) == (None, "attach")


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"name": "backup-db", "on_existing": "fail"}, None),
        ({"name": None, "on_existing": "attach"}, None),
        ({"name": "../x", "on_existing": "attach"}, "name: job name '../x' is not valid"),
        ({"name": "j12.34", "on_existing": "attach"}, "not shaped like a job id"),
        ({"name": None, "on_existing": "restart"}, "it needs name"),
    ],
)
def test_named_job_options_names_the_problem(options, problem):
    found = named_job_options(options)
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_named_job_options_speak_of_the_option_given():
    assert named_job_options({"name": "a/b"}, option="job_name").startswith("job_name: job name 'a/b'")
