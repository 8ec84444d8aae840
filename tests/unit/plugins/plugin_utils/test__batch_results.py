# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry
from ansible_collections.longrun.jobs.plugins.plugin_utils._batch_results import (
    DETAILS_PER_STATE,
    batch_result,
    flat_entry,
    summarize,
    summary_line,
)


def reported(jid: str, state: str, *, result: t.Optional[dict] = None, **job: t.Any) -> JobEntry:
    """A job entry as the target reports it (see _status_request.job_entry)."""
    record = _record.JobRecord(jid=jid, state=state, result=result, **job)
    return JobEntry(
        ansible_job_id=jid,
        results_file=f"/async/{jid}",
        finished=record.finished,
        failed=record.failed,
        job=record.public(),
        result=record.result if record.finished else None,
    )


def flat(jid: str, state: str, **changes: t.Any) -> dict:
    return flat_entry(reported(jid, state, **changes))


def test_flat_entry_of_an_ended_job():
    entry = reported(
        "j1.2",
        _record.FAILED,
        result={"failed": True, "rc": 3, "stdout": "x"},
        reason=_record.REASON_MODULE_FAILED,
        msg="job j1.2 failed: non-zero return code (rc=3)",
        started_at="2024-05-01T10:00:00.000Z",
        ended_at="2024-05-01T10:00:02.500Z",
        timeout=60,
        exit_code=1,
        progress={"percent": 40, "msg": "copied 4/10", "updated_at": "2024-05-01T10:00:02.000Z"},
    )

    assert flat_entry(entry) == {
        "ansible_job_id": "j1.2",
        "state": "failed",
        "reason": "module_failed",
        "finished": True,
        "failed": True,
        "started_at": "2024-05-01T10:00:00.000Z",
        "ended_at": "2024-05-01T10:00:02.500Z",
        "duration": 2.5,
        "timeout": 60,
        # The module's rc, not the exit code of its process.
        "rc": 3,
        "exit_code": 1,
        "msg": "job j1.2 failed: non-zero return code (rc=3)",
        # What the job last reported on its progress channel.
        "progress": {"percent": 40, "msg": "copied 4/10", "updated_at": "2024-05-01T10:00:02.000Z"},
        "result": {"failed": True, "rc": 3, "stdout": "x"},
    }


def test_flat_entry_does_not_pass_the_exit_code_off_as_rc():
    # A module such as uri returns no rc; its process exits 1 because it failed.
    entry = reported("j1", _record.FAILED, result={"failed": True, "msg": "Status code was 404"}, exit_code=1,
                     reason=_record.REASON_MODULE_FAILED)
    flat_one = flat_entry(entry)
    assert (flat_one["rc"], flat_one["exit_code"]) == (None, 1)
    assert summary_line([flat_one]) == "1 job: 1 failed (j1: Status code was 404)"


def test_flat_entry_of_a_running_job_has_no_result():
    entry = reported("j1", _record.RUNNING, started_at="2024-05-01T10:00:00.000Z")
    entry.result = {"rc": 9}  # never trusted before the end
    flat_one = flat_entry(entry)
    assert flat_one["finished"] is False
    assert flat_one["failed"] is False
    assert flat_one["result"] is None
    assert flat_one["rc"] is None
    assert flat_one["msg"] is None
    assert flat_one["progress"] is None


def test_summarize_counts_every_state_and_the_total():
    entries = [flat("j1", "succeeded"), flat("j2", "succeeded"), flat("j3", "failed"), flat("j4", "running")]
    assert summarize(entries) == {
        "succeeded": 2,
        "failed": 1,
        "timed_out": 0,
        "killed": 0,
        "lost": 0,
        "not_found": 0,
        "unreadable": 0,
        "running": 1,
        "waiting": 0,
        "total": 4,
    }


def test_summarize_counts_states_it_does_not_know():
    summary = summarize([{"state": "not_started"}, {"state": "not_started"}])
    assert summary["not_started"] == 2
    assert summary["total"] == 2


def test_summary_line_of_the_documented_example():
    entries = [
        flat("j1.1", "succeeded", result={"rc": 0}),
        flat("j1.2", "failed", result={"failed": True, "rc": 3}),
        flat("j1.3", "succeeded", result={}),
        flat("j4.5", "timed_out", result={"failed": True}, timeout=3),
        flat("j1.4", "succeeded", result={}),
    ]
    assert summary_line(entries) == "5 jobs: 3 succeeded, 1 failed (j1.2: rc=3), 1 timed_out (j4.5 after 3 s)"


@pytest.mark.parametrize(
    "entries, line",
    [
        ([], "0 jobs"),
        ([flat("j1", "succeeded", result={})], "1 job: 1 succeeded"),
        ([flat("j1", "running")], "1 job: 1 running"),
        (
            [flat("j1", "failed", result={"failed": True, "msg": "disk full\nmore detail"})],
            "1 job: 1 failed (j1: disk full)",
        ),
        ([flat("j1", "failed", result={"failed": True})], "1 job: 1 failed (j1: failed)"),
        (
            [flat("j1", "failed", result={"failed": True, "rc": 2}, reason=_record.REASON_MODULE_CRASHED)],
            "1 job: 1 failed (j1: crashed)",
        ),
        (
            [flat("j1", "lost", reason=_record.REASON_SUPERVISOR_GONE), flat("j2", "not_found")],
            "2 jobs: 1 lost (j1: supervisor_gone), 1 not_found (j2)",
        ),
        ([flat("j1", "killed", result={"failed": True})], "1 job: 1 killed (j1)"),
        ([{"ansible_job_id": None, "state": "not_started"}], "1 job: 1 not_started (None)"),
    ],
    ids=["none", "one", "running", "first-line", "no-msg", "crashed", "lost", "killed", "unknown-state"],
)
def test_summary_line(entries, line):
    assert summary_line(entries) == line


def test_summary_line_cuts_long_messages():
    entry = flat("j1", "failed", result={"failed": True, "msg": "x" * 200})
    detail = summary_line([entry]).split("(j1: ", 1)[1]
    assert detail == "x" * 57 + "...)"


def test_summary_line_shows_a_few_jobs_per_state():
    entries = [flat(f"j{n}", "timed_out", timeout=3) for n in range(DETAILS_PER_STATE + 2)]
    assert summary_line(entries) == "5 jobs: 5 timed_out (j0 after 3 s, j1 after 3 s, j2 after 3 s, 2 more)"


@pytest.mark.parametrize(
    "skipped, tail", [(1, "; 1 item without a job id ignored"), (3, "; 3 items without a job id ignored")]
)
def test_summary_line_counts_ignored_items(skipped, tail):
    assert summary_line([flat("j1", "succeeded", result={})], skipped=skipped) == "1 job: 1 succeeded" + tail


def test_batch_result_of_a_mixed_batch():
    entries = [
        flat("j1", "succeeded", result={}),
        flat("j2", "failed", result={"failed": True, "rc": 1}, msg="job j2 failed: boom (rc=1)"),
        flat("j3", "running"),
    ]

    result = batch_result(entries, skipped=1)

    assert result["jobs"] == entries
    assert result["summary"]["total"] == 3
    assert result["ignored"] == 1
    assert result["failed_jobs"] == [{"ansible_job_id": "j2", "state": "failed", "msg": "job j2 failed: boom (rc=1)"}]
    assert result["finished"] is False
    assert result["failed"] is True
    assert result["msg"] == "3 jobs: 1 succeeded, 1 failed (j2: rc=1), 1 running; 1 item without a job id ignored"


def test_batch_result_of_successes_only():
    result = batch_result([flat("j1", "succeeded", result={}), flat("j2", "succeeded", result={})])
    assert result["failed"] is False
    assert result["finished"] is True
    assert result["failed_jobs"] == []


def test_batch_result_of_nothing_is_finished_and_not_failed():
    result = batch_result([])
    assert (result["finished"], result["failed"], result["msg"]) == (True, False, "0 jobs")
