# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.run_parallel: many jobs per host, scheduled on the target in rounds."""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ansible import constants as C
from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version
from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    JobEntry,
    LaunchReply,
    RoundReply,
    RoundRequest,
    StatusRequest,
)
from ansible_collections.longrun.jobs.plugins.module_utils._timing import KILL_SETTLE
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure, result_of_action_exception
from ansible_collections.longrun.jobs.plugins.plugin_utils._batch_results import flat_entry, summarize
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import (
    LaunchPlan,
    failure_result,
    named_job_options,
    plan_launch,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._launch_plan import LaunchPlan, failure_result, plan_launch
from ansible_collections.longrun.jobs.plugins.plugin_utils._lock_options import lock_options, lock_wait
from ansible_collections.longrun.jobs.plugins.plugin_utils._module_resolution import resolve_wrapped_module
from ansible_collections.longrun.jobs.plugins.plugin_utils._parallel_table import failure_count_line, failure_table
from ansible_collections.longrun.jobs.plugins.plugin_utils._progress import show_progress
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import (
    CONNECTION_ERRORS,
    LIMIT_MARGIN,
    MAX_WINDOW,
    Reconnector,
    RemoteWaiter,
)
from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest, parse_run_request
from ansible_collections.longrun.jobs.plugins.plugin_utils._selection import type_name
from ansible_collections.longrun.jobs.plugins.plugin_utils._specs import run_options_spec, run_parallel_argument_spec
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option, strict_utf8_results
from ansible_collections.longrun.jobs.plugins.plugin_utils._task_timeout import TASK_TIMEOUT_ERRORS, TaskDeadline, some_jobs

display = Display()

_CORE_VERSION = tuple(int(part) for part in ansible_version.split(".")[:2])
NOT_STARTED = "not_started"
# Keys of a job entry that belong to run_parallel, not to the wrapped module.
# name is the item's display label, so its job name (run's name) is job_name.
_ENTRY_KEYS = ("name", "async", "job_name")
_NAME_LENGTH = 60
# Payload bytes sent per round; further jobs follow in later rounds.
MAX_QUEUE_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass
class PlannedJob:
    index: int
    name: str
    plan: LaunchPlan
    timeout: int
    grace: int
    entry: t.Optional[dict] = None
    # The longest the job may wait for its locks before its async limit starts.
    lock_wait: int = 0


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        # Core's alarm for the task timeout starts right before this call.
        self._deadline = TaskDeadline(self._task, started=time.monotonic())
        # The jobs and those known to run, for a task timeout that cuts a remote command.
        self._in_play: t.Tuple[t.List[PlannedJob], t.Dict[str, PlannedJob]] = ([], {})
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        try:
            _validation, args = self.validate_argument_spec(argument_spec=run_parallel_argument_spec())
            self._check_numbers(args)
            if args["detach"]:
                self._check_detach(args)
            async_dir = async_dir_option(self)
            jobs = [self._plan(index, entry, args, async_dir, task_vars) for index, entry in enumerate(args["jobs"])]
            if args["detach"]:
                result.update(self._launch_all(jobs, async_dir, task_vars))
            else:
                result.update(self._run_all(jobs, args, async_dir, task_vars))
            if self._play_context.no_log:
                _censor_entries(result)
        except AnsibleAction as exc:
            result.update(result_of_action_exception(exc))
        except TASK_TIMEOUT_ERRORS:
            jobs, running = self._in_play
            if not jobs:
                raise
            result.update(self._cut_by_task_timeout(jobs, running, {}, facts=None, uncertain=True))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    @staticmethod
    def _check_numbers(args: dict) -> None:
        for name, low, fix in (
            ("limit", 0, "use 0 for no limit"),
            ("timeout", 1, "it is the per-job async limit in seconds"),
            ("wait", 0, "use 0 for no overall limit"),
            ("grace", 0, "use 0 to send SIGKILL at once"),
        ):
            if args[name] < low:
                raise AnsibleActionFail(f"{name} must be {low} or more, got {args[name]}: {fix}")

    @staticmethod
    def _check_detach(args: dict) -> None:
        count = len(args["jobs"])
        if args["limit"] and args["limit"] < count:
            raise AnsibleActionFail(
                f"detach launches every job at once, so limit must be 0 or at least the number of jobs ({count}), "
                f"got {args['limit']}: drop limit, or leave detach off to run them limit at a time"
            )
        for name in ("wait", "fail_fast"):
            if args[name]:
                raise AnsibleActionFail(
                    f"{name} does not apply with detach, which returns once the jobs are launched: "
                    "wait for them with longrun.jobs.async_status (jobs: the registered result, wait: seconds)"
                )

    def _plan(self, index: int, entry: t.Any, args: dict, async_dir: str, task_vars: dict) -> PlannedJob:
        label = f"job {index + 1}"
        if not isinstance(entry, dict):
            raise AnsibleActionFail(
                f"{label} must be a dictionary such as {{name: build, ansible.builtin.command: make}}, "
                f"not {type_name(entry)}"
            )
        name = entry.get("name")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise AnsibleActionFail(f"{label}: name must be a non-empty string")
            label = f"{label} ({name})"
        timeout = entry.get("async", args["timeout"])
        if isinstance(timeout, str) and timeout.isdigit():
            timeout = int(timeout)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            raise AnsibleActionFail(f"{label}: async must be 1 or more seconds, got {timeout!r}")
        module_part = {key: value for key, value in entry.items() if key not in _ENTRY_KEYS}
        try:
            request = parse_run_request(
                module_part,
                module_loader=self._shared_loader_obj.module_loader,
                action_loader=self._shared_loader_obj.action_loader,
                collection_list=self._task.collections,
            )
        except AnsibleActionFail as exc:
            message = str(exc.message).replace("longrun.jobs.run takes", "each job takes a name, async,")
            raise action_failure(f"{label}: {message}") from None
        validation = ArgumentSpecValidator(run_options_spec()).validate(dict({"grace": args["grace"]}, **request.options))
        if validation.error_messages:
            raise AnsibleActionFail(f"{label}: {'; '.join(validation.error_messages)}")
        grace = validation.validated_parameters["grace"]
        if grace < 0:
            raise AnsibleActionFail(f"{label}: grace must be 0 or more seconds, got {grace}")
        request = self._named(request, entry.get("job_name"), validation.validated_parameters, label)
        locks, lock_timeout = lock_options(validation.validated_parameters, async_limit=timeout, label=label)
        request = resolve_wrapped_module(self, request, task_vars)
        plan = plan_launch(
            self, request, timeout=timeout, grace=grace, async_dir=async_dir, task_vars=task_vars,
            locks=locks, lock_timeout=lock_timeout,
        )
        return PlannedJob(index=index, name=name or _default_name(module_part), plan=plan,
                          timeout=timeout, grace=grace, lock_wait=lock_wait(locks, lock_timeout, timeout))

    @staticmethod
    def _named(request: RunRequest, job_name: t.Any, options: dict, label: str) -> RunRequest:
        """The request with the item's job_name as run's name option, checked."""
        options = dict(options, name=job_name)
        problem = named_job_options(options, option="job_name")
        if problem:
            raise AnsibleActionFail(f"{label}: {problem}")
        if options["on_existing"] == "skip":
            raise AnsibleActionFail(
                f"{label}: on_existing: skip is for longrun.jobs.run; a run_parallel item waits for its job, "
                "so use attach (wait for the running job of that job_name), fail or restart"
            )
        if job_name is None:
            return request
        return dataclasses.replace(request, options=dict(request.options, name=job_name))

    def _run_all(self, jobs: t.List[PlannedJob], args: dict, async_dir: str, task_vars: dict) -> dict:
        interpreter = next((job.plan.interpreter for job in jobs if job.plan.interpreter), None)
        agent = TargetAgent(self, task_vars, interpreter=interpreter)
        waiter = RemoteWaiter(agent, task_vars, async_dir)
        overall = float(args["wait"]) if args["wait"] else None
        started = time.monotonic()
        pending = list(jobs)
        running: t.Dict[str, PlannedJob] = {}
        self._in_play = (jobs, running)
        running_entries: t.Dict[str, JobEntry] = {}
        stop_reason: t.Optional[str] = None
        removed = False
        while pending or running:
            # An orphaned worker (ansible-playbook was killed) launches no more jobs: the running ones go on.
            waiter.check_controller()
            remaining = None if overall is None else overall - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                stop_reason = f"the overall limit of {args['wait']} s (parallel_wait, or wait) passed"
                break
            if self._deadline.passed():
                # The task timeout is near: the jobs go on, and the result names them.
                return self._cut_by_task_timeout(jobs, running, running_entries, facts=agent.discovered_facts)
            remaining = self._deadline.cap(MAX_WINDOW if remaining is None else remaining)
            queue = _next_queue(pending)
            round_request = _round_request(
                async_dir, queue, pending,
                running=list(running),
                limit=args["limit"],
                wait=MAX_WINDOW if remaining is None else min(MAX_WINDOW, remaining),
                stop_on_failure=args["fail_fast"],
                forget=[job.entry["ansible_job_id"] for job in jobs if job.entry and job.entry.get("ansible_job_id")],
            )
            # A lost connection is retried until every job in play must have ended.
            give_up_at = time.monotonic() + LIMIT_MARGIN + max(
                (job.timeout + job.grace + job.lock_wait for job in list(running.values()) + queue), default=0
            )
            reply = self._round(waiter, round_request, queue, give_up_at=give_up_at)
            removed = reply.removed
            for job, launched in _take_launched(reply, queue, pending):
                if launched.failed or launched.ansible_job_id is None:
                    job.entry = _launch_failure(job, launched)
                    if args["fail_fast"] and stop_reason is None:
                        stop_reason = f"{job.name} could not be launched and fail_fast is set"
                else:
                    running[launched.ansible_job_id] = job
            running_entries = {entry.ansible_job_id: entry for entry in reply.running}
            for entry in reply.ended:
                job = running.pop(entry.ansible_job_id)
                job.entry = flat_entry(entry)
                if job.entry["failed"] and args["fail_fast"] and stop_reason is None:
                    stop_reason = f"{job.name} ended {job.entry['state']} and fail_fast is set"
            if stop_reason is not None:
                break
            if running or pending:
                self._show_progress(task_vars, jobs, reply.running, time.monotonic() - started)
        if running:
            self._kill_running(waiter, running, args, stop_reason or "the jobs outlived their limits")
        launched_jids = [job.entry["ansible_job_id"] for job in jobs if job.entry and job.entry.get("ansible_job_id")]
        if launched_jids and not removed:
            waiter.call(StatusRequest(mode="cleanup", jids=launched_jids))
        for job in pending:
            job.entry = _not_started(job, stop_reason or "it was never launched")
        return self._report(jobs, agent.discovered_facts, no_log=bool(self._play_context.no_log))

    def _cut_by_task_timeout(
        self, jobs: t.List[PlannedJob], running: t.Dict[str, PlannedJob], entries: t.Dict[str, JobEntry], *,
        facts: t.Optional[dict], uncertain: bool = False,
    ) -> dict:
        """The result when the task timeout ends the wait: ended jobs as they ended, the others still running."""
        for jid, job in running.items():
            job.entry = flat_entry(entries.get(jid) or JobEntry(ansible_job_id=jid, job={"state": "running"}))
        why = "the task timeout passed" + (" (the jobs sent with the last round may have started)" if uncertain else "")
        for job in jobs:
            if job.entry is None:
                job.entry = _not_started(job, why)
        result = self._report(jobs, facts)
        table = result.get("msg")
        ids = list(running)
        if ids:
            result.update(self._deadline.result(
                f"{some_jobs(ids)} {'are' if len(ids) != 1 else 'is'}",
                "wait for them with longrun.jobs.async_status and jobs set to this result",
            ))
        else:
            result.update(self._deadline.result("no job is", "give the task a longer timeout to run the others"))
        if table:
            result["msg"] += "\n" + table
        return result

    def _launch_all(self, jobs: t.List[PlannedJob], async_dir: str, task_vars: dict) -> dict:
        """Detached: launch every job in launch-only rounds, report their job ids and return at once."""
        interpreter = next((job.plan.interpreter for job in jobs if job.plan.interpreter), None)
        agent = TargetAgent(self, task_vars, interpreter=interpreter)
        waiter = RemoteWaiter(agent, task_vars, async_dir)
        pending = list(jobs)
        while pending:
            queue = _next_queue(pending)
            round_request = _round_request(async_dir, queue, pending)
            reply = self._round(waiter, round_request, queue, give_up_at=time.monotonic() + LIMIT_MARGIN)
            for job, launched in _take_launched(reply, queue, pending):
                if launched.failed or launched.ansible_job_id is None:
                    job.entry = _launch_failure(job, launched)
                else:
                    job.entry = {"ansible_job_id": launched.ansible_job_id}
        jids = [job.entry["ansible_job_id"] for job in jobs if job.entry and job.entry.get("ansible_job_id")]
        if jids:
            # One status request for all: the entries then look like those of async_status.
            by_jid = {entry.ansible_job_id: entry for entry in waiter.call(StatusRequest(jids=jids)).jobs}
            for job in jobs:
                jid = t.cast(dict, job.entry).get("ansible_job_id")
                if jid in by_jid:
                    job.entry = flat_entry(by_jid[jid])
        results = [dict({"name": job.name}, **t.cast(dict, job.entry)) for job in jobs]
        result: dict = {"changed": bool(jids), "results": results, "summary": summarize(results)}
        if agent.discovered_facts:
            result["ansible_facts"] = agent.discovered_facts
        unlaunched = [entry for entry in results if entry.get("reason") == "launch_failed"]
        if unlaunched:
            details = "details hidden by no_log" if self._play_context.no_log else "; ".join(
                entry["msg"] for entry in unlaunched[:3]
            )
            result.update(failed=True, msg=f"{len(unlaunched)} of {len(results)} jobs could not be launched: {details}")
        else:
            result["msg"] = (
                f"launched {len(jids)} job{'s' if len(jids) != 1 else ''}; wait for them with "
                "longrun.jobs.async_status and jobs: set to this result"
            )
        return result

    def _round(
        self, waiter: RemoteWaiter, request: RoundRequest, queue: t.List[PlannedJob], *, give_up_at: float
    ) -> RoundReply:
        """One scheduling round on the target; after a lost connection, find out what it launched and carry on."""
        try:
            reply = waiter.agent.request(request)
        except CONNECTION_ERRORS as exc:
            return self._recover(waiter, request, queue, exc, give_up_at=give_up_at)
        if reply.failed:
            msg = reply.msg or "the longrun agent failed on the target"
            raise AnsibleActionFail(msg, result={"failed": True, "msg": msg})
        return reply

    @staticmethod
    def _recover(
        waiter: RemoteWaiter, request: RoundRequest, queue: t.List[PlannedJob], exc: Exception, *, give_up_at: float
    ) -> RoundReply:
        """Rebuild a lost round's reply from the async dir: launched jobs are found by their jid prefix."""
        reconnector = Reconnector(waiter, "a round of parallel jobs")
        while True:
            reconnector.after_failure(exc, give_up_at=give_up_at)
            try:
                listed = waiter.agent.request(StatusRequest(mode="list", async_dir=request.async_dir))
                break
            except CONNECTION_ERRORS as again:
                exc = again
        reconnector.after_success()
        if listed.failed:
            raise AnsibleActionFail(listed.msg or "cannot list the async dir after a lost connection")
        jids = [entry.ansible_job_id for entry in listed.jobs]
        launched = []
        for job in queue:
            prefix = job.plan.request.jid + "."
            found = next((jid for jid in jids if jid.startswith(prefix)), None)
            if found is not None:
                launched.append((job.index, LaunchReply(ansible_job_id=found)))
        # The jobs' ends are picked up by the next round, which reports the already ended ones at once.
        return RoundReply(launched=launched)

    def _show_progress(
        self, task_vars: dict, jobs: t.List[PlannedJob], running: t.List[JobEntry], waited: float
    ) -> None:
        host = task_vars.get("inventory_hostname", "?")
        finished = sum(1 for job in jobs if job.entry is not None)
        durations = [entry.job.get("duration") or 0 for entry in running]
        longest = f", longest running {max(durations):.0f} s" if durations else ""
        show_progress(
            f"[{host}] longrun: {finished}/{len(jobs)} jobs finished, {len(running)} running{longest} "
            f"(waited {waited:.0f} s)"
        )

    @staticmethod
    def _kill_running(waiter: RemoteWaiter, running: t.Dict[str, PlannedJob], args: dict, why: str) -> None:
        # A kill returns once the jobs are gone: grace, then SIGKILL and the final record.
        request = StatusRequest(mode="kill", jids=list(running), grace=args["grace"], wait=float(args["grace"] + KILL_SETTLE))
        for entry in waiter.call(request).jobs:
            job = running[entry.ansible_job_id]
            job.entry = flat_entry(entry)
            job.entry["msg"] = f"{why}: {job.entry['msg'] or 'killed'}"

    @staticmethod
    def _report(jobs: t.List[PlannedJob], facts: t.Optional[dict], *, no_log: bool = False) -> dict:
        results = [dict({"name": job.name}, **(job.entry or {})) for job in jobs]
        summary = summarize(results)
        failures = [entry for entry in results if entry["state"] != "succeeded"]
        result: dict = {
            "changed": any(entry.get("ansible_job_id") for entry in results),
            "results": results,
            "summary": summary,
        }
        if facts:
            result["ansible_facts"] = facts
        if failures and no_log:
            # The table shows job names and messages, which may hold what no_log hides; core shows msg even then.
            result.update(failed=True, msg=f"{failure_count_line(results)} (details hidden by no_log)")
        elif failures:
            table = failure_table(results)
            if _CORE_VERSION < (2, 19):
                # Older cores print msg as one JSON string, with its line breaks escaped.
                display.display(table, color=C.COLOR_ERROR, stderr=True)
            result.update(failed=True, msg=table)
        else:
            result["msg"] = f"{len(results)} job{'s' if len(results) != 1 else ''} succeeded"
        return result


def _censor_entries(result: dict) -> None:
    """Mark every job entry as no_log: core censors a result's results list only entry by entry, like loop items."""
    for entry in result.get("results") or []:
        entry["_ansible_no_log"] = True


def _next_queue(pending: t.List[PlannedJob]) -> t.List[PlannedJob]:
    """The pending jobs sent with the next round: all of them, unless their payloads are large."""
    queue: t.List[PlannedJob] = []
    size = 0
    for job in pending:
        size += len(job.plan.request.payload)
        if queue and size > MAX_QUEUE_BYTES:
            break
        queue.append(job)
    return queue


def _default_name(module_part: dict) -> str:
    """A name for a job without one: the module's short name as written and its command line or first argument."""
    # Run options (grace, lock...) are not the module.
    options = run_options_spec()
    key, value = next(((key, value) for key, value in module_part.items() if key not in options), ("job", None))
    if isinstance(value, dict):
        value = value.get("cmd") or value.get("_raw_params") or ""
    short = str(key).rsplit(".", 1)[-1]
    name = f"{short}: {value}" if isinstance(value, str) and value else short
    return name if len(name) <= _NAME_LENGTH else name[: _NAME_LENGTH - 3] + "..."


def _unlaunched_entry(job: PlannedJob, *, state: str, reason: t.Optional[str], msg: str,
                      result: t.Optional[dict]) -> dict:
    """The results entry of a job that has no record: its launch failed, or it never started."""
    return {
        "ansible_job_id": None,
        "state": state,
        "reason": reason,
        "finished": state != NOT_STARTED,
        "failed": True,
        "started_at": None,
        "ended_at": None,
        "duration": None,
        "timeout": job.timeout,
        "rc": None,
        "exit_code": None,
        "msg": msg,
        "result": result,
    }


def _round_request(
    async_dir: str,
    queue: t.List[PlannedJob],
    pending: t.List[PlannedJob],
    *,
    running: t.Sequence[str] = (),
    limit: int = 0,
    wait: float = 0,
    stop_on_failure: bool = False,
    forget: t.Sequence[str] = (),
) -> RoundRequest:
    """A round: launch the queued jobs, then wait for those running; the defaults only launch."""
    return RoundRequest(
        async_dir=async_dir,
        running=list(running),
        queue=[(job.index, job.plan.request) for job in queue],
        limit=limit,
        wait=float(wait),
        stop_on_failure=stop_on_failure,
        more_queued=len(queue) < len(pending),
        forget=list(forget),
        # A result the controller will refuse is not delivered: its record stays.
        keep_undecodable=strict_utf8_results(),
    )


def _take_launched(
    reply: RoundReply, queue: t.List[PlannedJob], pending: t.List[PlannedJob]
) -> t.Iterator[t.Tuple[PlannedJob, LaunchReply]]:
    """(job, its launch reply) for each job the round launched; each is taken off pending."""
    by_index = {job.index: job for job in queue}
    for key, launched in reply.launched:
        job = by_index[key]
        pending.remove(job)
        yield job, launched


def _launch_failure(job: PlannedJob, launched: LaunchReply) -> dict:
    return _unlaunched_entry(
        job, state="failed", reason="launch_failed",
        msg=f"{job.name} could not be launched: {launched.msg}", result=failure_result(launched),
    )


def _not_started(job: PlannedJob, why: str) -> dict:
    return _unlaunched_entry(job, state=NOT_STARTED, reason=None, msg=f"{job.name} was not started: {why}", result=None)
