# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting for jobs from the controller: one remote long-poll per window, reconnecting after a lost connection."""

from __future__ import annotations

import os
import time
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import HIDDEN_BY_NO_LOG
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusReply, StatusRequest
from ansible_collections.longrun.jobs.plugins.module_utils._timing import LIMIT_MARGIN, MAX_WINDOW
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import OutputFollower
from ansible_collections.longrun.jobs.plugins.plugin_utils._progress import show_progress
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, strict_utf8_results

try:
    from ansible.plugins.connection.ssh import AnsibleControlPersistBrokenPipeError
except ImportError:  # pragma: no cover - the ssh plugin ships with every core we support
    AnsibleControlPersistBrokenPipeError = AnsibleConnectionFailure  # type: ignore[misc,assignment]

display = Display()

# Pauses between reconnect attempts double from the first to the longest.
RECONNECT_PAUSE = 1.0
MAX_RECONNECT_PAUSE = 5.0
# What a broken connection raises: the job on the target is not affected by it.
CONNECTION_ERRORS = (AnsibleConnectionFailure, AnsibleControlPersistBrokenPipeError)


class Reconnector:
    """Retries of one wait after lost connections: a growing pause, a progress line, and a time to give up."""

    def __init__(self, waiter: RemoteWaiter, what: str) -> None:
        self.waiter = waiter
        self.what = what
        self.retries = 0
        self.lost_at: t.Optional[float] = None

    def after_failure(self, exc: Exception, *, give_up_at: float) -> None:
        """Pause before the next attempt, or raise AnsibleConnectionFailure when no time is left for one."""
        now = time.monotonic()
        if self.lost_at is None:
            self.lost_at = now
        if now >= give_up_at:
            if not self.retries:
                raise exc
            raise AnsibleConnectionFailure(
                f"longrun: the connection was lost while waiting for {self.what} and {self.retries} "
                f"retr{'y' if self.retries == 1 else 'ies'} over {now - self.lost_at:.0f} s did not restore it "
                f"({_first_line(exc)}); jobs keep running on the target under their own limits: collect "
                "their results with longrun.jobs.async_status once the host is reachable"
            ) from exc
        self.retries += 1
        pause = min(RECONNECT_PAUSE * 2 ** (self.retries - 1), MAX_RECONNECT_PAUSE, give_up_at - now)
        display.warning(
            f"longrun: [{self.waiter.host}] connection lost, retrying ({self.retries}) in {pause:.0f} s "
            f"while waiting for {self.what}: {_first_line(exc)}"
        )
        self.waiter.reconnect(pause)

    def after_success(self) -> None:
        if self.retries:
            show_progress(
                f"[{self.waiter.host}] longrun: connection restored after {self.retries} "
                f"retr{'y' if self.retries == 1 else 'ies'} ({time.monotonic() - t.cast(float, self.lost_at):.0f} s)"
            )
        self.retries = 0
        self.lost_at = None


class ControllerGone(AnsibleActionFail):
    """The ansible-playbook (or ansible) process that started this worker is gone: nobody gets the result."""


class RemoteWaiter:
    """Asks the agent on the target of an action plugin about jobs."""

    def __init__(self, agent: TargetAgent, task_vars: dict, async_dir: str) -> None:
        self.agent = agent
        self.task_vars = task_vars
        self.async_dir = async_dir
        # The process that runs the play. ansible-core's workers run in sessions of their own, so a SIGKILL of
        # ansible-playbook (even of its whole process group: an OOM kill, a CI runner's or AWX's kill) leaves
        # them running as orphans; the parent's change is how a waiting worker learns that its controller died.
        self.controller_pid = os.getppid()

    def check_controller(self) -> None:
        """Raise ControllerGone once the process that runs the play has died.

        An orphaned worker must stop waiting: its wait would renew the leases of jobs with
        on_controller_loss: kill, and the window that saw the end would remove the job's files
        though no one receives the result.
        """
        if os.getppid() != self.controller_pid:
            msg = (
                f"longrun: [{self.host}] the controller process (pid {self.controller_pid}) is gone, so this wait "
                "stopped; the job goes on, unless it was launched with on_controller_loss: kill"
            )
            raise ControllerGone(msg, result={"failed": True, "msg": msg})

    @property
    def host(self) -> str:
        return str(self.task_vars.get("inventory_hostname", "?"))

    def call(self, request: StatusRequest) -> StatusReply:
        """Serve one status request (on this waiter's async dir); raises AnsibleActionFail when the agent failed."""
        reply = self.agent.request(request.replace(async_dir=self.async_dir))
        if reply.failed:
            msg = reply.msg or "the longrun agent failed on the target"
            raise AnsibleActionFail(msg, result={"failed": True, "msg": msg})
        return reply

    def wait(
        self, jid: str, *, seconds: float, window: float, remove_ended: bool = False,
        follower: t.Optional[OutputFollower] = None,
    ) -> JobEntry:
        """Wait until the job ends or seconds pass; returns the job entry reported by the target.

        With remove_ended, the window that sees the end removes the job's files, unless its
        result is one that the agent's reply will be refused for (not UTF-8): that job stays.
        """
        request = StatusRequest(
            jids=[jid], single=True, remove_ended=remove_ended, keep_undecodable=remove_ended and strict_utf8_results()
        )
        reply = self.wait_for_jobs(request, seconds=seconds, window=window, follower=follower)
        return reply.jobs[0]

    def wait_for_jobs(
        self, request: StatusRequest, *, seconds: float, window: float = MAX_WINDOW,
        follower: t.Optional[OutputFollower] = None,
    ) -> StatusReply:
        """Repeat a status request in windows until its jobs end (all, or any) or seconds pass.

        Each window is one remote command, whatever the number of jobs; the
        reply of the last window is returned. A lost connection is retried with
        a growing pause until the wait is over, or until the jobs' own limits
        (as last reported) plus LIMIT_MARGIN have passed, whichever is first.

        With a follower, windows last at most its interval and their replies carry the jobs'
        new output, which the follower shows; the progress line keeps the pace of window.
        """
        window = max(0.0, min(window, MAX_WINDOW))
        started = time.monotonic()
        deadline = started + max(0.0, seconds)
        jobs_end_by: t.Optional[float] = None
        reconnector = Reconnector(self, _what(request))
        progress_due = started + window
        while True:
            self.check_controller()
            remaining = max(0.0, deadline - time.monotonic())
            this_window = min(window, remaining)
            asked = request
            if follower is not None:
                this_window = min(this_window, follower.interval)
                asked = follower.request(request)
            try:
                reply = self.call(asked.replace(mode="status", wait=this_window))
            except CONNECTION_ERRORS as exc:
                give_up_at = deadline if jobs_end_by is None else min(deadline, jobs_end_by)
                reconnector.after_failure(exc, give_up_at=give_up_at)
                continue
            reconnector.after_success()
            if follower is not None:
                follower.show(reply.jobs)
                # The output is the follower's: the reply the caller gets is the one of an unfollowed wait.
                for entry in reply.jobs:
                    entry.output = None
            jobs_end_by = latest_end(reply.jobs)
            if _done(reply, request.return_when) or time.monotonic() >= deadline:
                return reply
            if follower is None or time.monotonic() >= progress_due - 0.5:
                self._show_progress(reply.jobs, time.monotonic() - started)
                progress_due = time.monotonic() + window

    def reconnect(self, pause: float = RECONNECT_PAUSE) -> None:
        """Pause, then close the connection so that the next command opens a new one."""
        time.sleep(max(0.0, pause))
        try:
            self.agent.action._connection.close()
        except Exception:  # pylint: disable=broad-except
            pass

    def _show_progress(self, entries: t.Sequence[JobEntry], waited: float) -> None:
        # A no_log task shows no job's message, whether or not the job was launched under no_log.
        no_log = bool(getattr(getattr(self.agent.action, "_play_context", None), "no_log", False))
        show_progress(f"[{self.host}] longrun: {progress_line(entries, no_log=no_log)} (waited {waited:.0f} s)")


def latest_end(entries: t.Sequence[JobEntry]) -> t.Optional[float]:
    """The monotonic time by which every running job must have ended: its limit plus LIMIT_MARGIN.

    Computed from each job's timeout and the running time the target reports,
    so the two clocks need not agree. None when a running job has no limit on
    record (a stock job), or nothing runs; None too while a job waits for its locks, as its limit has not started.
    """
    now = time.monotonic()
    ends = []
    for entry in entries:
        if entry.finished:
            continue
        timeout, duration = entry.job.get("timeout"), entry.job.get("duration")
        if entry.job.get("state") == "waiting":
            return None
        if not isinstance(timeout, (int, float)) or not isinstance(duration, (int, float)):
            return None
        ends.append(now + max(0.0, timeout - duration) + LIMIT_MARGIN)
    return max(ends) if ends else None


def _what(request: StatusRequest) -> str:
    if request.single and request.jids:
        return f"job {request.jids[0]}"
    count = len(request.jids or [])
    return f"{count} job{'s' if count != 1 else ''}"


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _done(reply: StatusReply, return_when: str) -> bool:
    ended = [entry.finished for entry in reply.jobs]
    return all(ended) or (return_when == "any" and any(ended))


def progress_line(entries: t.Sequence[JobEntry], *, no_log: bool = False) -> str:
    """What a wait is at: one job's state, or finished/total, running and the longest running time."""
    durations = [entry.job.get("duration") for entry in entries if not entry.finished]
    longest = max((d for d in durations if isinstance(d, (int, float))), default=None)
    longest_text = f"{longest:.0f} s" if longest is not None else "unknown"
    if len(entries) == 1:
        entry = entries[0]
        waiting = waiting_text(entry.job)
        if waiting:
            return f"job {entry.ansible_job_id} is {waiting}"
        running_for = f", running for {longest_text}" if longest is not None else ""
        return f"job {entry.ansible_job_id} is {entry.state}{running_for}{reported_progress(entry.job, no_log=no_log)}"
    finished = sum(1 for entry in entries if entry.finished)
    waiting_count = sum(1 for entry in entries if entry.job.get("state") == "waiting")
    return (
        f"{finished}/{len(entries)} jobs finished, {len(entries) - finished - waiting_count} running, "
        + (f"{waiting_count} waiting for locks, " if waiting_count else "")
        + f"longest running {longest_text}"
    )


def waiting_text(job: t.Mapping[str, t.Any]) -> str:
    """For a job that waits for its locks: 'waiting for lock X (held by job J)'; else ''."""
    if job.get("state") != "waiting":
        return ""
    waiting_for = job.get("waiting_for")
    if not isinstance(waiting_for, dict) or not waiting_for.get("lock"):
        return "waiting for its locks"
    holder = waiting_for.get("holder")
    holder_pid = waiting_for.get("holder_pid")
    held_by = f" (held by job {holder})" if holder else f" (held by process {holder_pid})" if holder_pid else ""
    return f"waiting for lock {waiting_for['lock']}{held_by}"


def reported_progress(job: dict, *, no_log: bool = False) -> str:
    """What the job last reported on its progress channel, as ': 40% copied 4/10', or ''; no_log hides the message."""
    progress = job.get("progress")
    if not isinstance(progress, dict):
        return ""
    percent, msg = progress.get("percent"), progress.get("msg")
    words = [f"{percent}%"] if isinstance(percent, (int, float)) and not isinstance(percent, bool) else []
    if isinstance(msg, str) and msg:
        words.append(HIDDEN_BY_NO_LOG if no_log else " ".join(msg.split()))
    return ": " + " ".join(words) if words else ""
