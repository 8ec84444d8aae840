# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turning a job as reported by the target into a task result."""

from __future__ import annotations

import copy
import json
import typing as t

from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry

display = Display()

# Keys stock async_status always returns, empty until the job has finished.
STOCK_DEFAULTS = {"stdout": "", "stderr": "", "stdout_lines": [], "stderr_lines": []}


def task_result_for_job(entry: JobEntry, *, stock_defaults: bool = False, action: t.Any = None) -> dict:
    """The module result at the top level (as stock does), plus ansible_job_id, finished and job.

    With ``action``, a failed module result, or a module error serialized by ansible-core 2.19+ (an
    ``exception`` with its type tag), goes through core's own parser, as stock's poller result does.
    """
    result: dict = {}
    if stock_defaults:
        result.update(copy.deepcopy(STOCK_DEFAULTS))
    finished = entry.finished
    core_words_msg = False
    if finished:
        module_result = dict(entry.result or {})
        _pass_module_messages(module_result)
        # Core's parser of module output makes the result of stock's poller: its error summary of a failure
        # (2.19 and 2.20), which failed_when keeps as failed_when_suppressed_exception, and its msg for errors.
        if action is not None and (module_result.get("failed") is True or _holds_serialized_error(module_result)):
            module_result, core_words_msg = _parsed_by_core(action, module_result)
        result.update(module_result)
        for stream in ("stdout", "stderr"):
            if isinstance(result.get(stream), str) and f"{stream}_lines" not in module_result:
                result[f"{stream}_lines"] = result[stream].splitlines()
    job = dict(entry.job)
    result.update(
        ansible_job_id=entry.ansible_job_id,
        started=True,
        finished=finished,
        job=job,
    )
    if entry.results_file:
        result["results_file"] = entry.results_file
    if entry.failed:
        result["failed"] = True
        # As with stock, a module's own msg stays; job.msg has our sentence.
        if not (finished and isinstance(result.get("msg"), str) and result["msg"]) and not core_words_msg:
            result["msg"] = job.get("msg") or f"job {entry.ansible_job_id} failed"
    else:
        result["failed"] = False
        if not finished:
            result.setdefault("changed", False)
    return result


def _pass_module_messages(module_result: dict) -> None:
    """Leave the module's warnings to core, as a list; show its deprecations, stored as plain text, as warnings.

    Warnings stay in the result: core shows them and keeps them in the registered result, as
    for stock async. Deprecations as plain text are refused by some cores' callbacks (2.18).
    """
    warnings = module_result.get("warnings")
    if warnings is not None and not isinstance(warnings, list):
        module_result["warnings"] = [warnings]
    messages = module_result.pop("deprecations", None) or []
    for message in messages if isinstance(messages, list) else [messages]:
        display.warning(f"deprecation: {message}")


def _holds_serialized_error(module_result: dict) -> bool:
    exception = module_result.get("exception")
    return isinstance(exception, dict) and "__ansible_type" in exception


def _parsed_by_core(action: t.Any, module_result: dict) -> t.Tuple[dict, bool]:
    """The module result as core's parser of module output makes it; returns it and whether core words msg."""
    returned = {"stdout": json.dumps(module_result), "stderr": "", "rc": 0}
    try:
        # pylint: disable-next=protected-access
        parsed = action._parse_returned_data(returned, "legacy")
        as_dict = getattr(parsed, "as_result_dict", None)
        data = as_dict(for_round_trip=True) if callable(as_dict) else dict(parsed)
    except Exception:  # pylint: disable=broad-except
        # A core whose parser takes other arguments has no serialized errors either.
        return module_result, False
    data = {key: value for key, value in data.items() if not key.startswith("_ansible")}
    return data, not data.get("msg")
