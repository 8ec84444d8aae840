# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Launching a wrapped module as a supervised job: building it on the controller, starting it on the target."""

from __future__ import annotations

import dataclasses
import secrets
import typing as t

from ansible_collections.longrun.jobs.plugins.plugin_utils._module_payload import build_module_payload
from ansible_collections.longrun.jobs.plugins.plugin_utils._module_resolution import resolve_wrapped_module
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent

NO_JOB_ID = "No job id was returned by the async task"


@dataclasses.dataclass
class PreparedLaunch:
    """Everything a launch needs, built ahead so that the launch itself is one remote request."""

    params: dict
    # The module's own interpreter, or None for non-Python modules (the agent then finds one).
    interpreter: t.Optional[str]


def prepare_launch(
    action: t.Any, request: RunRequest, *, timeout: int, grace: int, async_dir: str, task_vars: dict
) -> PreparedLaunch:
    request = resolve_wrapped_module(action, request, task_vars)
    module_args = dict(request.module_args)
    action._update_module_args(request.module_name, module_args, task_vars)
    # The job outlives this task: it must make (and remove) its own tmp dir.
    module_args["_ansible_tmpdir"] = None
    payload = build_module_payload(action, request.module_name, module_args, task_vars)
    params = dict(
        payload.wrapper_args(),
        jid=f"j{secrets.randbelow(10 ** 12)}",
        async_dir=async_dir,
        timeout=timeout,
        grace=grace,
    )
    return PreparedLaunch(params=params, interpreter=payload.interpreter if payload.style == "new" else None)


def launch(agent: TargetAgent, prepared: PreparedLaunch) -> dict:
    """Start the job; the reply carries ansible_job_id, results_file and job, or failed and msg."""
    launched = agent.request("launch", prepared.params)
    if launched.get("failed"):
        launched.setdefault("msg", "the job could not be launched")
    elif "ansible_job_id" not in launched:
        # Core's message for a launch that returned no job id (TaskExecutor._poll_async_result).
        detail = launched.get("msg")
        launched.update(failed=True, msg=NO_JOB_ID + (f": {detail}" if detail else ""))
    return launched
