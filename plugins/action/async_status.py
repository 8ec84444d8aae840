# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.async_status: stock-compatible results, batches, long waits split into windows."""

from __future__ import annotations

import copy
import time
import typing as t

from ansible.errors import AnsibleAction
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import StatusRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure, result_of_action_exception
from ansible_collections.longrun.jobs.plugins.plugin_utils._batch_results import (
    batch_result,
    flat_entry,
    listed_entry,
    summarize,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_results import STOCK_DEFAULTS, task_result_for_job
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import OutputFollower
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_results import output_result
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import MAX_WINDOW, RemoteWaiter
from ansible_collections.longrun.jobs.plugins.plugin_utils._specs import (
    async_status_argument_spec,
    async_status_constraints,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._status_options import (
    RequestError,
    parse_follow,
    parse_request,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option
from ansible_collections.longrun.jobs.plugins.plugin_utils._task_timeout import TASK_TIMEOUT_ERRORS, TaskDeadline, some_jobs


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False
    _follow_interval: t.Optional[float] = None

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        # Core's alarm for the task timeout starts right before this call.
        self._deadline = TaskDeadline(self._task, started=time.monotonic())
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        request: t.Optional[StatusRequest] = None
        try:
            _validation, args = self.validate_argument_spec(
                argument_spec=async_status_argument_spec(), **async_status_constraints()
            )
            try:
                request = parse_request(args).replace(check_mode=self._task.check_mode)
                self._follow_interval = parse_follow(args)
            except RequestError as exc:
                raise action_failure(str(exc)) from None
            if request.jids == [] and request.mode != "list":
                result.update(self._nothing_to_do(request))
                return result
            agent = TargetAgent(self, task_vars)
            if agent.discovered_facts:
                result["ansible_facts"] = agent.discovered_facts
            waiter = RemoteWaiter(agent, task_vars, async_dir_option(self))
            result.update(self._serve(waiter, request))
        except AnsibleAction as exc:
            result.update(result_of_action_exception(exc))
        except TASK_TIMEOUT_ERRORS:
            # The alarm fired in a remote command that outlasted the margin: say which jobs were asked about.
            if request is None or not request.jids or request.mode != "status":
                raise
            result.update(self._cut_by_task_timeout(request))
        return result

    def _cut_by_task_timeout(self, request: StatusRequest) -> dict:
        jids = t.cast(t.List[str], request.jids)
        if request.single:
            return dict(
                ansible_job_id=jids[0], started=True, finished=False,
                **self._deadline.result(f"job {jids[0]} may be", f"wait for it with longrun.jobs.async_status jid={jids[0]}"),
            )
        return dict(
            finished=False,
            **self._deadline.result(
                f"{some_jobs(jids)} may be",
                "wait for them again with the same jobs",
            ),
        )

    def _serve(self, waiter: RemoteWaiter, request: StatusRequest) -> dict:
        if request.mode == "list":
            return self._list(waiter, request)
        if request.mode == "kill":
            return self._kill(waiter, request)
        if request.mode == "cleanup":
            if request.single and request.older_than is None and request.states is None and not request.force:
                return self._cleanup_one(waiter, request)
            return self._cleanup(waiter, request)
        if request.mode == "output":
            return output_result(waiter.call(request), single=request.single, skipped=request.ignored)
        seconds = self._deadline.cap(request.wait)
        follower = self._follower(waiter, request)
        if request.single:
            jid = t.cast(t.List[str], request.jids)[0]
            entry = waiter.wait(jid, seconds=seconds, window=MAX_WINDOW, follower=follower)
            result = task_result_for_job(entry, stock_defaults=True, action=self)
            if seconds < request.wait and not result["finished"]:
                result.update(self._deadline.result(
                    f"job {jid} is", f"wait for it again with longrun.jobs.async_status jid={jid}"
                ))
            return result
        reply = waiter.wait_for_jobs(request, seconds=seconds, follower=follower)
        result = dict(batch_result([flat_entry(entry) for entry in reply.jobs], skipped=request.ignored),
                      changed=False)
        running = [entry["ansible_job_id"] for entry in result["jobs"] if not entry["finished"]]
        done = not running or (request.return_when == "any" and len(running) < len(result["jobs"]))
        if seconds < request.wait and not done:
            summary = result["msg"]
            result.update(self._deadline.result(
                f"{some_jobs(running)} {'are' if len(running) != 1 else 'is'}",
                "wait for them again with longrun.jobs.async_status and the same jobs",
            ))
            result["msg"] += f"; {summary}"
        return result

    def _follower(self, waiter: RemoteWaiter, request: StatusRequest) -> t.Optional[OutputFollower]:
        # Under the task's no_log nothing of the output is asked for, let alone shown.
        if self._follow_interval is None or self._play_context.no_log:
            return None
        return OutputFollower(waiter.host, interval=self._follow_interval, name_jobs=not request.single)

    @staticmethod
    def _nothing_to_do(request: StatusRequest) -> dict:
        result = batch_result([], skipped=request.ignored)
        if request.mode == "cleanup":
            result.update(removed=[], spared=[], killed=[], not_found=[])
        if request.mode == "kill":
            result["killed"] = []
        if request.mode == "output":
            result.update(next_since={}, truncated=False, complete=True)
        return dict(result, changed=False)

    def _kill(self, waiter: RemoteWaiter, request: StatusRequest) -> dict:
        jids = t.cast(t.List[str], request.jids)
        total_wait = request.wait
        started = time.monotonic()
        reply = waiter.call(request.replace(wait=min(total_wait, MAX_WINDOW)))
        entries = reply.jobs
        still_running = [entry.ansible_job_id for entry in entries if not entry.finished]
        killed = reply.killed
        if not self._task.check_mode and set(still_running) & set(killed):
            # A grace period longer than one window: keep waiting, one window at a time.
            later = waiter.wait_for_jobs(
                StatusRequest(jids=still_running), seconds=max(0.0, total_wait - (time.monotonic() - started))
            )
            by_jid = {entry.ansible_job_id: entry for entry in later.jobs}
            entries = [by_jid.get(entry.ansible_job_id, entry) for entry in entries]
            # A job that ended on its own while the kill was under way was not killed.
            final_states = {entry.ansible_job_id: entry.state for entry in entries}
            killed = [jid for jid in killed if final_states.get(jid) in ("killed", "running", "waiting")]
        flat = [flat_entry(entry) for entry in entries]
        problems = []
        refused = reply.refused
        for entry in flat:
            jid = entry["ansible_job_id"]
            if jid in refused:
                problems.append({"ansible_job_id": jid, "state": entry["state"], "msg": refused[jid]})
            elif entry["state"] == "not_found":
                problems.append({"ansible_job_id": jid, "state": entry["state"], "msg": entry["msg"]})
            elif not entry["finished"] and not self._task.check_mode:
                problems.append({
                    "ansible_job_id": jid,
                    "state": entry["state"],
                    "msg": f"job {jid} was signalled but had not ended after {total_wait} s",
                })
        result = batch_result(flat, skipped=request.ignored)
        verb = "would kill" if self._task.check_mode else "killed"
        result.update(
            changed=bool(killed),
            killed=killed,
            failed_jobs=problems,
            failed=bool(problems),
            msg=f"{verb} {len(killed)} of {len(flat)} job{'s' if len(flat) != 1 else ''}; {result['msg']}",
        )
        if problems:
            result["msg"] += "; " + "; ".join(problem["msg"] for problem in problems[:3])
        if request.single:
            entry = entries[0]
            result.update(ansible_job_id=entry.ansible_job_id, job=entry.job)
        return result

    @staticmethod
    def _list(waiter: RemoteWaiter, request: StatusRequest) -> dict:
        reply = waiter.call(request)
        jobs = [listed_entry(entry) for entry in reply.jobs]
        summary = summarize(jobs)
        counts = ", ".join(f"{count} {state}" for state, count in summary.items() if count and state != "total")
        return {
            "changed": False,
            "jobs": jobs,
            "summary": summary,
            "async_dir": reply.async_dir,
            "msg": f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}" + (f": {counts}" if counts else ""),
        }

    def _cleanup(self, waiter: RemoteWaiter, request: StatusRequest) -> dict:
        reply = waiter.call(request)
        removed, spared = reply.removed, reply.spared
        verb = "would remove" if self._task.check_mode else "removed"
        msg = f"{verb} {len(removed)} job record{'s' if len(removed) != 1 else ''}"
        if reply.killed:
            msg += f" ({len(reply.killed)} killed first)"
        msg += f"; spared {len(spared)} running job{'s' if len(spared) != 1 else ''}"
        not_found = reply.not_found
        if not_found:
            # As with jid: a job named in jobs that has no record is a failure, not a silent success.
            listed = ", ".join(not_found[:5]) + (f" and {len(not_found) - 5} more" if len(not_found) > 5 else "")
            msg += (
                f"; {len(not_found)} job{'s' if len(not_found) != 1 else ''} not found: {listed} "
                "(no record in the async dir: removed before, or never started there)"
            )
        return {
            "failed": bool(not_found),
            "changed": bool(removed),
            "removed": removed,
            "spared": spared,
            "killed": reply.killed,
            "not_found": not_found,
            "ignored": request.ignored,
            "async_dir": reply.async_dir,
            "msg": msg,
        }

    def _cleanup_one(self, waiter: RemoteWaiter, request: StatusRequest) -> dict:
        reply = waiter.call(request)
        entry = reply.jobs[0]
        # The job's id, also when the request named the job by its name.
        jid = entry.ansible_job_id
        job = entry.job
        result = {
            "ansible_job_id": jid,
            "started": True,
            "finished": entry.finished,
            "changed": reply.changed,
            "job": job,
            **copy.deepcopy(STOCK_DEFAULTS),
        }
        if jid in reply.removed and self._task.check_mode:
            # Nothing was erased, so there is no erased path to report.
            result["msg"] = f"check mode: the record of job {jid} would be removed: {entry.results_file}"
        elif jid in reply.removed:
            result["erased"] = entry.results_file
        else:
            result["failed"] = True
            result["msg"] = job.get("msg") or f"job {jid} could not be cleaned up"
        return result
