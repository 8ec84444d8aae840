# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.run: launch a module under our supervisor and long-poll for its end."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._specs import MAX_SECONDS, run_options_spec
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import result_of_action_exception
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_results import task_result_for_job
from ansible_collections.longrun.jobs.plugins.plugin_utils._launcher import launch, prepare_launch
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import RemoteWaiter
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest, parse_run_request
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option

# After limit + grace the supervisor still needs a moment to reap and record.
SETTLE_SECONDS = 15


class ActionModule(ActionBase):
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        poll = self._take_over_polling()
        try:
            request = parse_run_request(
                self._task.args,
                module_loader=self._shared_loader_obj.module_loader,
                action_loader=self._shared_loader_obj.action_loader,
                collection_list=self._task.collections,
            )
            options = self._validated_options(request)
            if not self._task.async_val:
                result.update(self._execute_module(
                    module_name=request.module_name, module_args=request.module_args, task_vars=task_vars,
                ))
                return result
            result.update(self._run_as_job(request, options, poll, task_vars))
        except AnsibleAction as exc:
            result.update(result_of_action_exception(exc))
        finally:
            if self._task.async_val:
                # Core keeps the tmp dir of async tasks for stock's wrapper; ours does not need it.
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _take_over_polling(self) -> int:
        """Return the task's poll value and switch core's poller off: we wait ourselves, by long-polling.

        The original value is kept on the task so that until/retries attempts see it again.
        """
        poll = getattr(self._task, "_longrun_poll", None)
        if poll is None:
            poll = self._task.poll or 0
            setattr(self._task, "_longrun_poll", poll)
        if self._task.async_val:
            self._task.poll = 0
        return poll

    def _validated_options(self, request: RunRequest) -> dict:
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
        return options

    def _run_as_job(self, request: RunRequest, options: dict, poll: int, task_vars: dict) -> dict:
        if self._task.async_val < 0:
            raise AnsibleActionFail(f"async must be 1 or more seconds, got {self._task.async_val}")
        if self._task.async_val > MAX_SECONDS:
            raise AnsibleActionFail(
                f"async must be at most {MAX_SECONDS} seconds (100 years), got {self._task.async_val}: "
                "set a limit the job can reach"
            )
        async_dir = async_dir_option(self)
        prepared = prepare_launch(
            self, request, timeout=self._task.async_val, grace=options["grace"], async_dir=async_dir,
            task_vars=task_vars,
        )
        agent = TargetAgent(self, task_vars, interpreter=prepared.interpreter)
        launched = launch(agent, prepared)
        if agent.discovered_facts:
            launched["ansible_facts"] = agent.discovered_facts
        if launched.get("failed"):
            return launched
        if poll <= 0:
            return {
                "changed": True,
                "started": True,
                "finished": False,
                "ansible_job_id": launched["ansible_job_id"],
                "results_file": launched["results_file"],
                "job": launched.get("job", {}),
            }
        return self._wait_for_end(RemoteWaiter(agent, task_vars, async_dir), launched, options, poll)

    def _wait_for_end(self, waiter: RemoteWaiter, launched: dict, options: dict, poll: int) -> dict:
        jid = launched["ansible_job_id"]
        limit = self._task.async_val + options["grace"] + SETTLE_SECONDS
        # The window that sees the end also removes the job's files: no extra round trip.
        entry = waiter.wait(jid, seconds=limit, window=poll, remove_ended=True)
        if not entry.get("finished"):
            return {
                "failed": True,
                "changed": True,
                "ansible_job_id": jid,
                "started": True,
                "finished": False,
                "results_file": launched["results_file"],
                "job": entry.get("job", {}),
                "msg": (
                    f"job {jid} did not report its end within {limit} s (async limit {self._task.async_val} s "
                    f"plus grace and settling time); check it with longrun.jobs.async_status"
                ),
            }
        # Stock's poller returns what async_status gives: the same keys here.
        return task_result_for_job(entry, stock_defaults=True, action=self)
