# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting for jobs from the controller: one remote long-poll per window."""

from __future__ import annotations

import time
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent

display = Display()

# No remote command should run much longer than a minute (SSH idle limits,
# visible progress), so longer waits are split into windows of this size.
MAX_WINDOW = 55.0
RECONNECT_PAUSE = 1.0


class RemoteWaiter:
    """Asks the agent on the target of an action plugin about jobs."""

    def __init__(self, agent: TargetAgent, task_vars: dict, async_dir: str) -> None:
        self.agent = agent
        self.task_vars = task_vars
        self.async_dir = async_dir

    def call(self, params: dict) -> dict:
        defaults = {"mode": "status", "wait": 0, "_remove_ended": False, "_async_dir": self.async_dir}
        reply = self.agent.request("status", dict(defaults, **params))
        if reply.get("failed") and "jobs" not in reply:
            raise AnsibleActionFail(reply.get("msg") or "the longrun agent failed on the target", result=reply)
        return reply

    def wait(self, jid: str, *, seconds: float, window: float, remove_ended: bool = False) -> dict:
        """Wait until the job ends or seconds pass; returns the job entry reported by the target."""
        reply = self.wait_for_jobs({"jid": jid, "_remove_ended": remove_ended}, seconds=seconds, window=window)
        return reply["jobs"][0]

    def wait_for_jobs(self, params: dict, *, seconds: float, window: float = MAX_WINDOW) -> dict:
        """Repeat a status request in windows until its jobs end (all, or any) or seconds pass.

        Each window is one remote command, whatever the number of jobs; the
        reply of the last window is returned.
        """
        window = max(0.0, min(window, MAX_WINDOW))
        started = time.monotonic()
        deadline = started + max(0.0, seconds)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                reply = self.call(dict(params, mode="status", wait=min(window, remaining)))
            except AnsibleConnectionFailure as exc:
                if time.monotonic() >= deadline:
                    raise
                display.warning(f"longrun: lost the connection while waiting for jobs, retrying: {exc}")
                self.reconnect()
                continue
            if _done(reply, params.get("return_when") or "all") or time.monotonic() >= deadline:
                return reply
            self._show_progress(reply["jobs"], time.monotonic() - started)

    def reconnect(self) -> None:
        """Pause, then close the connection so that the next command opens a new one."""
        time.sleep(RECONNECT_PAUSE)
        try:
            self.agent.action._connection.close()
        except Exception:  # pylint: disable=broad-except
            pass

    def _show_progress(self, entries: t.Sequence[dict], waited: float) -> None:
        host = self.task_vars.get("inventory_hostname", "?")
        display.display(f"[{host}] longrun: {progress_line(entries)} (waited {waited:.0f} s)")


def _done(reply: dict, return_when: str) -> bool:
    ended = [bool(entry.get("finished")) for entry in reply.get("jobs", [])]
    return all(ended) or (return_when == "any" and any(ended))


def progress_line(entries: t.Sequence[dict]) -> str:
    """What a wait is at: one job's state, or finished/total, running and the longest running time."""
    durations = [
        (entry.get("job") or {}).get("duration")
        for entry in entries
        if not entry.get("finished")
    ]
    longest = max((d for d in durations if isinstance(d, (int, float))), default=None)
    longest_text = f"{longest:.0f} s" if longest is not None else "unknown"
    if len(entries) == 1:
        entry = entries[0]
        job = entry.get("job") or {}
        running_for = f", running for {longest_text}" if longest is not None else ""
        return f"job {entry.get('ansible_job_id')} is {job.get('state')}{running_for}"
    finished = sum(1 for entry in entries if entry.get("finished"))
    return (
        f"{finished}/{len(entries)} jobs finished, {len(entries) - finished} running, "
        f"longest running {longest_text}"
    )
