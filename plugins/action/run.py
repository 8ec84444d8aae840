# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.run: launch a module under our supervisor and long-poll for its end."""

from __future__ import annotations

import time
import typing as t

from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import LaunchReply
from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS, SETTLE_SECONDS
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import result_of_action_exception
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_results import task_result_for_job
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import failure_result, launch, plan_launch
from ansible_collections.longrun.jobs.plugins.plugin_utils._module_resolution import resolve_wrapped_module
from ansible_collections.longrun.jobs.plugins.plugin_utils._progress import show_progress
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import RemoteWaiter
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest, parse_run_request
from ansible_collections.longrun.jobs.plugins.plugin_utils._specs import run_options_spec
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option
from ansible_collections.longrun.jobs.plugins.plugin_utils._task_timeout import TASK_TIMEOUT_ERRORS, TaskDeadline


class ActionModule(ActionBase):
    _supports_async = True
    _supports_check_mode = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        # Core's alarm for the task timeout starts right before this call.
        self._deadline = TaskDeadline(self._task, started=time.monotonic())
        # The job id once the launch request is out: what a task timeout must not lose.
        self._launching: t.Optional[dict] = None
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
                request = resolve_wrapped_module(self, request, task_vars)
                result.update(self._execute_module(
                    module_name=request.module_name, module_args=request.module_args, task_vars=task_vars,
                ))
                return result
            result.update(self._run_as_job(request, options, poll, task_vars))
        except AnsibleAction as exc:
            result.update(result_of_action_exception(exc))
        except TASK_TIMEOUT_ERRORS:
            # The alarm fired in a remote command that outlasted the margin: the job goes on, keep its id.
            if self._launching is None:
                raise
            result.update(self._cut_by_task_timeout(self._launching))
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
        plan = plan_launch(
            self, request, timeout=self._task.async_val, grace=options["grace"], async_dir=async_dir,
            task_vars=task_vars,
        )
        agent = TargetAgent(self, task_vars, interpreter=plan.interpreter)
        self._launching = {"requested_jid": plan.request.jid}
        launched = launch(agent, plan)
        if launched.failed:
            self._launching = None
            failed = failure_result(launched)
            if agent.discovered_facts:
                failed["ansible_facts"] = agent.discovered_facts
            return failed
        self._launching = _launched_job(launched)
        if poll <= 0:
            return _launched_job(launched)
        return self._wait_for_end(RemoteWaiter(agent, task_vars, async_dir), launched, options, poll)

    def _wait_for_end(self, waiter: RemoteWaiter, launched: LaunchReply, options: dict, poll: int) -> dict:
        jid = t.cast(str, launched.ansible_job_id)
        limit = self._task.async_val + options["grace"] + SETTLE_SECONDS
        # Before the wait: a run interrupted from here on leaves the job running, and this names it.
        show_progress(
            f"[{waiter.host}] longrun: job {jid} started (async {self._task.async_val} s); "
            f"if this run is interrupted, the job goes on: collect it with longrun.jobs.async_status jid={jid}"
        )
        try:
            # The long-poll window that sees the end also removes the job's files: no extra round trip.
            entry = waiter.wait(jid, seconds=self._deadline.cap(limit), window=poll, remove_ended=True)
        except AnsibleActionFail as exc:
            # The job is not lost with the reply (the target keeps what it could not deliver): name it.
            # Whether it has finished is not known here.
            job = {key: value for key, value in _launched_job(launched).items() if key != "finished"}
            raise AnsibleActionFail(exc.message, result=dict(exc.result, **job)) from None
        if entry.finished:
            # Stock's poller returns what async_status gives: the same keys here.
            return task_result_for_job(entry, stock_defaults=True, action=self)
        if self._deadline.passed():
            return dict(self._cut_by_task_timeout(_launched_job(launched)), job=entry.job)
        result = dict(_launched_job(launched), job=entry.job)
        result.update(
            failed=True,
            msg=(
                f"job {jid} did not report its end within {limit} s (async limit {self._task.async_val} s "
                f"plus grace and settling time); check it with longrun.jobs.async_status"
            ),
        )
        return result

    def _cut_by_task_timeout(self, launching: dict) -> dict:
        """The result of a task whose timeout ended the wait (or the launch) while its job goes on."""
        jid = launching.get("ansible_job_id")
        if jid is None:
            return self._deadline.result(
                f"the launch of job {launching['requested_jid']} may have started it; if so, it is",
                f"find it with longrun.jobs.async_status mode=list (its id starts with {launching['requested_jid']}.)",
            )
        return dict(
            launching,
            **self._deadline.result(
                f"job {jid} is",
                f"wait for it with longrun.jobs.async_status jid={jid} and wait set to the seconds to wait",
            ),
        )


def _launched_job(launched: LaunchReply) -> dict:
    """What a task result says about a launched job that it did not wait for to its end."""
    return {
        "changed": True,
        "started": True,
        "finished": False,
        "ansible_job_id": launched.ansible_job_id,
        "results_file": launched.results_file,
        "job": dict(launched.job),
    }
