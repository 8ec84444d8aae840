# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turning a job as reported by the target into a task result."""

from __future__ import annotations

import copy
import typing as t

from ansible.utils.display import Display

display = Display()

# Keys stock async_status always returns, empty until the job has finished.
STOCK_DEFAULTS = {"stdout": "", "stderr": "", "stdout_lines": [], "stderr_lines": []}
# Keys that a result must not carry as plain data: core processes them itself.
_MESSAGE_KEYS = ("warnings", "deprecations")


def task_result_for_job(entry: t.Mapping[str, t.Any], *, stock_defaults: bool = False) -> dict:
    """The module result at the top level (as stock does), plus ansible_job_id, finished and job."""
    result: dict = {}
    if stock_defaults:
        result.update(copy.deepcopy(STOCK_DEFAULTS))
    finished = bool(entry.get("finished"))
    if finished:
        module_result = dict(entry.get("result") or {})
        _show_module_messages(module_result)
        result.update(module_result)
        for stream in ("stdout", "stderr"):
            if isinstance(result.get(stream), str) and f"{stream}_lines" not in module_result:
                result[f"{stream}_lines"] = result[stream].splitlines()
    job = dict(entry.get("job") or {})
    result.update(
        ansible_job_id=entry.get("ansible_job_id"),
        started=True,
        finished=finished,
        job=job,
    )
    if entry.get("results_file"):
        result["results_file"] = entry["results_file"]
    if entry.get("failed"):
        result["failed"] = True
        result["msg"] = job.get("msg") or result.get("msg") or f"job {entry.get('ansible_job_id')} failed"
    else:
        result["failed"] = False
        if not finished:
            result.setdefault("changed", False)
    return result


def _show_module_messages(module_result: dict) -> None:
    for key in _MESSAGE_KEYS:
        messages = module_result.pop(key, None) or []
        for message in messages if isinstance(messages, list) else [messages]:
            prefix = "" if key == "warnings" else "deprecation: "
            display.warning(f"{prefix}{message}")
