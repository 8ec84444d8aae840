# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.run: launch a module under our supervisor and long-poll for its end."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure
from ansible_collections.longrun.jobs.plugins.plugin_utils._controller_loss import ControllerLossError, lease_seconds
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_task import JobTask
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import named_job_options
from ansible_collections.longrun.jobs.plugins.plugin_utils._lock_options import lock_options
from ansible_collections.longrun.jobs.plugins.plugin_utils._module_resolution import resolve_wrapped_module
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import FollowError, follow_interval
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest, parse_run_request
from ansible_collections.longrun.jobs.plugins.plugin_utils._specs import run_options_spec


class ActionModule(ActionBase):
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        job = JobTask(self)
        task_vars = task_vars or {}

        def prepare() -> t.Tuple[RunRequest, int]:
            request = parse_run_request(
                self._task.args,
                module_loader=self._shared_loader_obj.module_loader,
                action_loader=self._shared_loader_obj.action_loader,
                collection_list=self._task.collections,
            )
            options = self._validated_options(request)
            if options["name"] is not None and not self._task.async_val:
                raise AnsibleActionFail(
                    "name makes the task a named job, which needs async: set async to the job's limit in seconds"
                )
            job.locks, job.lock_timeout = lock_options(options, async_limit=self._task.async_val)
            if options["follow"]:
                job.follow_interval = self._follow_interval(options, poll=job.poll)
            try:
                job.lease = lease_seconds(options["on_controller_loss"], options["controller_timeout"])
            except ControllerLossError as exc:
                raise action_failure(str(exc)) from None
            return resolve_wrapped_module(self, request, task_vars), options["grace"]

        return job.run(tmp, task_vars, prepare)

    @staticmethod
    def _validated_options(request: RunRequest) -> dict:
        validation = ArgumentSpecValidator(run_options_spec()).validate(request.options)
        if validation.error_messages:
            raise AnsibleActionFail(f"invalid run options: {'; '.join(validation.error_messages)}")
        options = validation.validated_parameters
        if options["grace"] < 0:
            raise AnsibleActionFail(
                f"grace must be 0 or more seconds, got {options['grace']}: use grace: 0 to SIGKILL at once"
            )
        if options["grace"] > MAX_SECONDS:
            raise AnsibleActionFail(f"grace must be at most {MAX_SECONDS} seconds (100 years), got {options['grace']}")
        problem = named_job_options(options)
        if problem:
            raise AnsibleActionFail(problem)
        return options

    def _follow_interval(self, options: dict, *, poll: int) -> float:
        if not self._task.async_val or poll <= 0:
            raise AnsibleActionFail(
                "follow: true shows the output while the task waits for its job: it needs async and poll "
                "greater than 0; for a job started with poll: 0, use longrun.jobs.async_status with wait and follow"
            )
        try:
            return follow_interval(options.get("follow_interval"))
        except FollowError as exc:
            raise action_failure(str(exc)) from None
