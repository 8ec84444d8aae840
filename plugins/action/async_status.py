# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of longrun.jobs.async_status: stock-compatible results, long waits split into windows."""

from __future__ import annotations

import copy
import typing as t

from ansible.errors import AnsibleAction, AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.module_utils._record import InvalidJid, validate_jid
from ansible_collections.longrun.jobs.plugins.module_utils._specs import async_status_argument_spec
from ansible_collections.longrun.jobs.plugins.plugin_utils._job_results import STOCK_DEFAULTS, task_result_for_job
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import MAX_WINDOW, RemoteWaiter
from ansible_collections.longrun.jobs.plugins.plugin_utils._target_agent import TargetAgent, async_dir_option


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        try:
            _validation, args = self.validate_argument_spec(argument_spec=async_status_argument_spec())
            jid = self._checked_jid(args["jid"])
            if args["wait"] < 0:
                raise AnsibleActionFail(
                    f"wait must be 0 or more seconds, got {args['wait']}: use wait: 0 to report at once"
                )
            async_dir = async_dir_option(self)
            agent = TargetAgent(self, task_vars)
            if agent.discovered_facts:
                result["ansible_facts"] = agent.discovered_facts
            waiter = RemoteWaiter(agent, task_vars, async_dir)
            if args["mode"] == "cleanup":
                result.update(self._cleanup(waiter, jid))
            else:
                entry = waiter.wait(jid, seconds=args["wait"], window=MAX_WINDOW)
                result.update(task_result_for_job(entry, stock_defaults=True))
        except AnsibleAction as exc:
            result.update(exc.result)
        return result

    @staticmethod
    def _checked_jid(jid: t.Any) -> str:
        try:
            return validate_jid(jid)
        except InvalidJid as exc:
            raise AnsibleActionFail(str(exc)) from None

    @staticmethod
    def _cleanup(waiter: RemoteWaiter, jid: str) -> dict:
        reply = waiter.call({"jid": jid, "mode": "cleanup"})
        entry = reply["jobs"][0]
        job = entry.get("job") or {}
        result = {
            "ansible_job_id": jid,
            "started": True,
            "finished": bool(entry.get("finished")),
            "changed": bool(reply.get("changed")),
            "job": job,
            **copy.deepcopy(STOCK_DEFAULTS),
        }
        if jid in reply.get("removed", []):
            result["erased"] = entry.get("results_file")
        else:
            result["failed"] = True
            result["msg"] = job.get("msg") or f"job {jid} could not be cleaned up"
        return result
