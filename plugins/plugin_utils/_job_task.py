# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A task run as a longrun job: launch under our supervisor, then long-poll for its end.

longrun.jobs.run and the actions of transparent mode both run their task through a JobTask;
they differ only in how they name the module and its arguments.
"""

from __future__ import annotations

import time
import typing as t

from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import LaunchReply
from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS, MAX_WINDOW, SETTLE_SECONDS
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure, result_of_action_exception
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_results import task_result_for_job
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import failure_result, launch, plan_launch
from ansible_collections.longrun.jobs.plugins.plugin_utils._lock_options import lock_wait
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import OutputFollower
from ansible_collections.longrun.jobs.plugins.plugin_utils._progress import show_progress
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import RemoteWaiter, waiting_text
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option
from ansible_collections.longrun.jobs.plugins.plugin_utils._task_timeout import TASK_TIMEOUT_ERRORS, TaskDeadline


class JobTask:
    """The run of one task of ``action`` as a job; make it first thing in the action's ``run()``.

    ``announce_verbosity`` is the verbosity from which the line naming the started job is shown:
    0 for longrun.jobs.run, 1 (``-v``) for transparent mode, whose output otherwise matches stock's.
    With ``hand_over_at_task_timeout``, a job that outlives the task timeout is handed to core's
    poller, which waits outside the timeout as it does for stock async (transparent mode); else the
    task fails with ``timedout`` and names the job (longrun.jobs.run).
    """

    def __init__(
        self, action: ActionBase, *, announce_verbosity: int = 0, hand_over_at_task_timeout: bool = False
    ) -> None:
        # Core's alarm for the task timeout starts right before the action's run().
        self.deadline = TaskDeadline(action._task, started=time.monotonic())
        self.action = action
        self.task = action._task
        self.announce_verbosity = announce_verbosity
        self.hand_over_at_task_timeout = hand_over_at_task_timeout
        # The job id once the launch request is out: what a task timeout must not lose.
        self._launching: t.Optional[dict] = None
        # Seconds between looks at the job's output while waiting, when the task follows it (set by prepare).
        self.follow_interval: t.Optional[float] = None
        # The job's locks and how long it may wait for them (set by prepare, from run's lock options).
        self.locks: t.List[str] = []
        self.lock_timeout: t.Optional[int] = None
        # on_controller_loss: kill: the seconds a wait window keeps the job's lease (set by prepare); None: keep.
        self.lease: t.Optional[int] = None
        self.poll = self._take_over_polling()

    def run(self, tmp: t.Any, task_vars: dict, prepare: t.Callable[[], t.Tuple[RunRequest, int]]) -> dict:
        """The task result: ``prepare`` names the module, its arguments and the grace, or raises AnsibleAction."""
        # ActionBase's checks (async or check mode unsupported, both at once) and its result keys.
        result = ActionBase.run(self.action, tmp, task_vars)
        del tmp
        try:
            request, grace = prepare()
            if not self.task.async_val:
                result.update(self.action._execute_module(
                    module_name=request.module_name, module_args=request.module_args, task_vars=task_vars,
                ))
                return result
            result.update(self._run_as_job(request, grace, task_vars))
        except AnsibleAction as exc:
            result.update(result_of_action_exception(exc))
        except TASK_TIMEOUT_ERRORS:
            # The alarm fired in a remote command that outlasted the margin: the job goes on, keep its id.
            if self._launching is None:
                raise
            result.update(self._at_task_timeout(self._launching))
        finally:
            if self.task.async_val:
                # Core keeps the tmp dir of async tasks for stock's wrapper; ours does not need it.
                self.action._remove_tmp_path(self.action._connection._shell.tmpdir)
        return result

    def _take_over_polling(self) -> int:
        """Return the task's poll value and switch core's poller off: we wait ourselves, by long-polling.

        The original value is kept on the task so that until/retries attempts see it again.
        """
        poll = getattr(self.task, "_longrun_poll", None)
        if poll is None:
            poll = self.task.poll or 0
            setattr(self.task, "_longrun_poll", poll)
        if self.task.async_val:
            self.task.poll = 0
        return poll

    def _run_as_job(self, request: RunRequest, grace: int, task_vars: dict) -> dict:
        limit = self.task.async_val
        if limit < 0:
            raise AnsibleActionFail(f"async must be 1 or more seconds, got {limit}")
        if limit > MAX_SECONDS:
            raise AnsibleActionFail(
                f"async must be at most {MAX_SECONDS} seconds (100 years), got {limit}: set a limit the job can reach"
            )
        async_dir = async_dir_option(self.action)
        plan = plan_launch(
            self.action, request, timeout=limit, grace=grace, async_dir=async_dir, task_vars=task_vars,
            locks=self.locks, lock_timeout=self.lock_timeout, lease=self.lease,
        )
        agent = TargetAgent(self.action, task_vars, interpreter=plan.interpreter)
        self._launching = {"requested_jid": plan.request.jid}
        launched = launch(agent, plan)
        if launched.failed:
            self._launching = None
            failed = failure_result(launched)
            if agent.discovered_facts:
                failed["ansible_facts"] = agent.discovered_facts
            return failed
        self._launching = launched_job(launched)
        if launched.existing is not None:
            return self._found_existing(launched, grace, agent, async_dir, task_vars)
        if self.poll <= 0:
            show_progress(
                f"[{task_vars.get('inventory_hostname', '?')}] longrun: {request.module_name} runs as job {launched.ansible_job_id}",
                verbosity=max(1, self.announce_verbosity),
            )
            return launched_job(launched)
        return self._wait_for_end(RemoteWaiter(agent, task_vars, async_dir), launched, grace)

    def _found_existing(
        self, launched: LaunchReply, grace: int, agent: TargetAgent, async_dir: str, task_vars: dict
    ) -> dict:
        """A named launch found the job of its name (on_existing attach or skip) and launched nothing."""
        jid = launched.ansible_job_id
        name = launched.job.get("name")
        host = task_vars.get("inventory_hostname", "?")
        state = launched.job.get("state")
        if launched.existing == "skip":
            show_progress(
                f"[{host}] longrun: skipped, job {jid} named {name} is {state}", verbosity=self.announce_verbosity
            )
            return dict(
                launched_job(launched), changed=False, skipped=True, finished=state not in ("running", "waiting"),
                msg=f"skipped: job {jid} named {name!r} is {state} (on_existing: skip); "
                f"wait for it with longrun.jobs.async_status jid={name}",
            )
        show_progress(
            f"[{host}] longrun: attached to job {jid} named {name} ({state}) instead of launching it again",
            verbosity=self.announce_verbosity,
        )
        if self.poll <= 0:
            return dict(launched_job(launched), changed=False, attached=True)
        result = self._wait_for_end(RemoteWaiter(agent, task_vars, async_dir), launched, grace, attached=True)
        return dict(result, attached=True)

    def _wait_for_end(
        self, waiter: RemoteWaiter, launched: LaunchReply, grace: int, *, attached: bool = False
    ) -> dict:
        jid = t.cast(str, launched.ansible_job_id)
        timeout = self.task.async_val
        if attached and isinstance(launched.job.get("timeout"), int):
            # The job found runs under the limit it was launched with.
            timeout = max(timeout, launched.job["timeout"])
        # A job that waits for its locks starts its async limit only once it holds them.
        limit = timeout + grace + SETTLE_SECONDS + lock_wait(self.locks, self.lock_timeout, timeout)
        # Before the wait: a run interrupted from here on leaves the job running (or, with a lease, ends it
        # soon), and this names it.
        name = launched.job.get("name")
        waiting = waiting_text(launched.job)
        if waiting:
            start = f"is {waiting} (async {timeout} s once it starts)"
        else:
            start = f"{'runs' if attached else 'started'} (async {timeout} s)"
        if self.lease is not None:
            interrupted = (
                f"the job is killed within {min(self.poll, MAX_WINDOW) + self.lease:.0f} s (on_controller_loss: kill, "
                f"controller_timeout {self.lease} s)"
            )
        elif name:
            interrupted = (
                f"the job goes on: run again to attach to it, or collect it with longrun.jobs.async_status jid={name}"
            )
        else:
            interrupted = f"the job goes on: collect it with longrun.jobs.async_status jid={jid}"
        show_progress(
            f"[{waiter.host}] longrun: job {jid}{f' named {name}' if name else ''} {start}; "
            f"if this run is interrupted, {interrupted}",
            verbosity=self.announce_verbosity,
        )
        try:
            # The long-poll window that sees the end also removes the job's files: no extra round trip.
            entry = waiter.wait(
                jid, seconds=self.deadline.cap(limit), window=self.poll, remove_ended=True,
                follower=self._follower(waiter),
            )
        except AnsibleActionFail as exc:
            # The job is not lost with the reply (the target keeps what it could not deliver): name it.
            # Whether it has finished is not known here.
            job = {key: value for key, value in launched_job(launched).items() if key != "finished"}
            raise action_failure(exc.message, result=dict(exc.result, **job)) from None
        if entry.finished:
            # Stock's poller returns what async_status gives: the same keys here.
            return task_result_for_job(entry, stock_defaults=True, action=self.action)
        if self.deadline.passed():
            return dict(self._at_task_timeout(launched_job(launched)), job=entry.job)
        result = dict(launched_job(launched), job=entry.job)
        result.update(
            failed=True,
            msg=(
                f"job {jid} did not report its end within {limit} s (async limit {timeout} s "
                f"plus grace{', lock_timeout' if self.locks else ''} and settling time); "
                "check it with longrun.jobs.async_status"
            ),
        )
        return result

    def _follower(self, waiter: RemoteWaiter) -> t.Optional[OutputFollower]:
        # Under the task's no_log nothing of the output is asked for, let alone shown.
        if self.follow_interval is None or self.action._play_context.no_log:
            return None
        return OutputFollower(waiter.host, interval=self.follow_interval)

    def _at_task_timeout(self, launching: dict) -> dict:
        """The result of a task whose timeout ended the wait (or the launch) while its job goes on."""
        if self.hand_over_at_task_timeout and launching.get("ansible_job_id") and self.poll > 0:
            # Core's poller runs after the timeout's alarm and reads the job through our async_status.
            self.task.poll = self.poll
            return launching
        return self._cut_by_task_timeout(launching)

    def _cut_by_task_timeout(self, launching: dict) -> dict:
        """The result of a task whose timeout ended the wait (or the launch) while its job goes on."""
        jid = launching.get("ansible_job_id")
        if jid is None:
            return self.deadline.result(
                f"the launch of job {launching['requested_jid']} may have started it; if so, it is",
                f"find it with longrun.jobs.async_status mode=list (its id starts with {launching['requested_jid']}.)",
            )
        return dict(
            launching,
            **self.deadline.result(
                f"job {jid} is",
                f"wait for it with longrun.jobs.async_status jid={jid} and wait set to the seconds to wait",
            ),
        )


def launched_job(launched: LaunchReply) -> dict:
    """What a task result says about a launched job that it did not wait for to its end."""
    return {
        "changed": True,
        "started": True,
        "finished": False,
        "ansible_job_id": launched.ansible_job_id,
        "results_file": launched.results_file,
        "job": dict(launched.job),
    }
