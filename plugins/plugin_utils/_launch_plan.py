# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of a launch: the wrapped module built on the controller (or the command executor's parameters),
as the launch request the target serves."""

from __future__ import annotations

import dataclasses
import secrets
import typing as t

from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import InvalidJid, validate_name
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import LaunchReply, LaunchRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._command_executor import DECLINED, executor_parameters
from ansible_collections.longrun.jobs.plugins.plugin_utils._module_payload import build_module_payload
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent

display = Display()

NO_JOB_ID = "No job id was returned by the async task"


@dataclasses.dataclass
class LaunchPlan:
    """Everything a launch needs, built ahead so that the launch itself is one remote request."""

    request: LaunchRequest
    # The module's own interpreter, or None for non-Python modules (the agent then finds one).
    interpreter: t.Optional[str]
    # A command executor's job: the plan that runs the module instead, should the target decline the job.
    module_plan: t.Optional[t.Callable[[], "LaunchPlan"]] = None


def plan_launch(
    action: t.Any, request: RunRequest, *, timeout: int, grace: int, async_dir: str, task_vars: dict,
    locks: t.Sequence[str] = (), lock_timeout: t.Optional[int] = None, lease: t.Optional[int] = None,
) -> LaunchPlan:
    """lease: on_controller_loss: kill, the seconds that a controller's wait keeps the job (None: keep)."""
    module_args = dict(request.module_args)
    action._update_module_args(request.module_name, module_args, task_vars)
    # The job outlives this task: it must make (and remove) its own tmp dir.
    module_args["_ansible_tmpdir"] = None
    jid = f"j{secrets.randbelow(10 ** 12)}"
    no_log = bool(action._play_context.no_log)
    # Checked by the action (named_job_options): the target claims the name.
    identity = {"name": request.options.get("name"), "on_existing": request.options.get("on_existing") or "attach"}

    def module_plan() -> LaunchPlan:
        payload = build_module_payload(action, request.module_name, module_args, task_vars)
        launch_request = LaunchRequest(
            jid=jid,
            async_dir=async_dir,
            timeout=timeout,
            grace=grace,
            interpreter=payload.interpreter,
            payload=payload.payload_b64,
            style=payload.style,
            args_data=payload.args_data,
            no_log=no_log,
            **identity,
            locks=list(locks),
            lock_timeout=lock_timeout,
            lease=lease,
        )
        return LaunchPlan(request=launch_request, interpreter=payload.interpreter if payload.style == "new" else None)

    command = executor_parameters(action, request.module_name, module_args, task_vars)
    if command is None:
        return module_plan()
    # Our executor runs the command: no module to build, and the target finds its own interpreter.
    launch_request = LaunchRequest(
        jid=jid, async_dir=async_dir, timeout=timeout, grace=grace, interpreter="", payload="", style="command",
        command=command, no_log=no_log, locks=list(locks), lock_timeout=lock_timeout, lease=lease, **identity,
    )
    return LaunchPlan(request=launch_request, interpreter=None, module_plan=module_plan)


def launch(agent: TargetAgent, plan: LaunchPlan) -> LaunchReply:
    """Start the job; the reply carries ansible_job_id, results_file and job, or failed and msg."""
    request = plan.request
    if plan.module_plan is not None:
        # The module then says what is wrong with a command that cannot run, in its own words.
        request = request.replace(command=dict(request.command, decline_unrunnable=True))
    launched = agent.request(request)
    if launched.failed and plan.module_plan is not None and DECLINED in (launched.msg or ""):
        display.vvv(f"longrun: {launched.msg}")
        launched = agent.request(plan.module_plan().request)
    if launched.failed:
        return launched.replace(msg=launched.msg or "the job could not be launched")
    if launched.ansible_job_id is None:
        # Core's message for a launch that returned no job id (TaskExecutor._poll_async_result).
        detail = launched.msg
        return launched.replace(failed=True, msg=NO_JOB_ID + (f": {detail}" if detail else ""))
    return launched


def named_job_options(options: t.Mapping[str, t.Any], *, option: str = "name") -> t.Optional[str]:
    """Check run's name option (on_existing is checked by its spec); returns the problem as a sentence, or None."""
    name = options.get("name")
    if name is None:
        if options.get("on_existing") not in (None, "attach"):
            return f"on_existing says what to do when a job of the same name exists: it needs {option}"
        return None
    try:
        validate_name(name)
    except InvalidJid as exc:
        return f"{option}: {exc}"
    return None


def failure_result(launched: LaunchReply) -> dict:
    """The task result of a launch that failed."""
    return {"failed": True, "msg": launched.msg}
