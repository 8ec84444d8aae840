# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry
from ansible_collections.longrun.jobs.plugins.plugin_utils import _job_results

JID = "j123.456"


def _entry(state: str, *, result=None, failed=False, msg=None) -> dict:
    job = {"state": state, "pid": 456, "duration": 1.5, "origin": "longrun"}
    if msg is not None:
        job["msg"] = msg
    return {
        "ansible_job_id": JID,
        "results_file": f"/home/u/.ansible_async/{JID}",
        "finished": state != "running",
        "failed": failed,
        "job": job,
        "result": result,
    }


def task_result_for_job(entry: dict, **options: t.Any) -> dict:
    """The task result of a job entry given as it goes on the wire."""
    return _job_results.task_result_for_job(JobEntry.from_fields(entry), **options)


@pytest.fixture
def warnings_shown(monkeypatch):
    shown = []
    monkeypatch.setattr(_job_results.display, "warning", shown.append)
    return shown


def test_finished_success_puts_the_module_result_at_the_top_level():
    entry = _entry("succeeded", result={"changed": True, "rc": 0, "stdout": "a\nb", "stderr": "", "cmd": ["x"]})

    result = task_result_for_job(entry)

    assert result["changed"] is True
    assert result["rc"] == 0
    assert result["cmd"] == ["x"]
    assert result["stdout_lines"] == ["a", "b"]
    assert result["stderr_lines"] == []
    assert result["failed"] is False
    assert result["finished"] is True
    assert result["started"] is True
    assert result["ansible_job_id"] == JID
    assert result["results_file"] == entry["results_file"]
    assert result["job"] == entry["job"]
    assert "msg" not in result


def test_finished_success_keeps_lines_the_module_returned():
    entry = _entry("succeeded", result={"stdout": "a\nb", "stdout_lines": ["given"]})

    assert task_result_for_job(entry)["stdout_lines"] == ["given"]


def test_a_failed_module_keeps_its_own_msg_and_job_msg_has_ours():
    entry = _entry(
        "failed",
        failed=True,
        result={"failed": True, "rc": 2, "msg": "non-zero return code", "stdout": ""},
        msg="job j123.456 failed: non-zero return code (rc=2)",
    )

    result = task_result_for_job(entry)

    assert result["failed"] is True
    assert result["msg"] == "non-zero return code"
    assert result["job"]["msg"] == "job j123.456 failed: non-zero return code (rc=2)"
    assert result["rc"] == 2
    assert result["finished"] is True


@pytest.mark.parametrize(
    "module_result, expected_msg",
    [
        ({"failed": True, "msg": "module said no"}, "module said no"),
        ({"failed": True}, f"job {JID} failed"),
        (None, f"job {JID} failed"),
    ],
    ids=["module-msg", "no-msg", "no-result"],
)
def test_failure_without_a_job_message_falls_back(module_result, expected_msg):
    result = task_result_for_job(_entry("failed", failed=True, result=module_result))

    assert result["failed"] is True
    assert result["msg"] == expected_msg


def test_running_job_is_not_finished_failed_or_changed():
    result = task_result_for_job(_entry("running"))

    assert result["finished"] is False
    assert result["failed"] is False
    assert result["changed"] is False
    assert result["started"] is True
    assert result["ansible_job_id"] == JID
    assert result["job"]["state"] == "running"
    assert "stdout" not in result


@pytest.mark.parametrize("state, finished", [("running", False), ("not_found", True)])
def test_stock_defaults_add_empty_streams(state, finished):
    entry = _entry(state, failed=state != "running", msg="job not found" if finished else None)

    result = task_result_for_job(entry, stock_defaults=True)

    assert result["stdout"] == ""
    assert result["stderr"] == ""
    assert result["stdout_lines"] == []
    assert result["stderr_lines"] == []
    assert result["finished"] is finished


def test_stock_defaults_give_way_to_module_output():
    entry = _entry("succeeded", result={"stdout": "out\n", "stderr": "e1\ne2"})

    result = task_result_for_job(entry, stock_defaults=True)

    assert result["stdout"] == "out\n"
    assert result["stdout_lines"] == ["out"]
    assert result["stderr_lines"] == ["e1", "e2"]


def test_not_found_job_fails_with_its_message():
    entry = _entry("not_found", failed=True, msg=f"could not find job {JID} in /x")

    result = task_result_for_job(entry, stock_defaults=True)

    assert result["failed"] is True
    assert result["msg"] == f"could not find job {JID} in /x"


def test_warnings_stay_for_core_and_deprecations_are_shown(warnings_shown):
    entry = _entry(
        "succeeded",
        result={"changed": False, "warnings": ["w1", "w2"], "deprecations": ["old option"]},
    )
    before = copy.deepcopy(entry)

    result = task_result_for_job(entry)

    assert result["warnings"] == ["w1", "w2"]
    assert "deprecations" not in result
    assert warnings_shown == ["deprecation: old option"]
    assert entry == before


def test_a_single_warning_string_becomes_a_list(warnings_shown):
    result = task_result_for_job(_entry("succeeded", result={"warnings": "only one"}))

    assert result["warnings"] == ["only one"]
    assert warnings_shown == []


def test_results_file_is_left_out_when_unknown():
    entry = _entry("running")
    del entry["results_file"]

    assert "results_file" not in task_result_for_job(entry)
