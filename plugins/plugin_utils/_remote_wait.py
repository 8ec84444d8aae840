# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waiting for jobs from the controller: one remote long-poll per window."""

from __future__ import annotations

import time

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
        window = max(0.0, min(window, MAX_WINDOW))
        started = time.monotonic()
        deadline = started + max(0.0, seconds)
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                params = {"jid": jid, "wait": min(window, remaining), "_remove_ended": remove_ended}
                entry = self.call(params)["jobs"][0]
            except AnsibleConnectionFailure as exc:
                if time.monotonic() >= deadline:
                    raise
                display.warning(f"longrun: lost the connection while waiting for job {jid}, retrying: {exc}")
                self._reconnect()
                continue
            if entry.get("finished") or time.monotonic() >= deadline:
                return entry
            self._show_progress(entry, time.monotonic() - started)

    def _reconnect(self) -> None:
        time.sleep(RECONNECT_PAUSE)
        try:
            self.agent.action._connection.close()
        except Exception:  # pylint: disable=broad-except
            pass

    def _show_progress(self, entry: dict, waited: float) -> None:
        host = self.task_vars.get("inventory_hostname", "?")
        job = entry.get("job") or {}
        duration = job.get("duration")
        running_for = f", running for {duration:.0f} s" if isinstance(duration, (int, float)) else ""
        display.display(
            f"[{host}] longrun: job {entry.get('ansible_job_id')} is {job.get('state')}{running_for} "
            f"(waited {waited:.0f} s)"
        )
