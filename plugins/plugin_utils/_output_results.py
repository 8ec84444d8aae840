# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The result of async_status mode=output: each job's text per stream, and the offsets to read on from."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job.output_reader import STREAMS
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusReply

# States in which a job has no output to read: asking for it is a mistake worth failing on.
_NO_JOB = (_record.NOT_FOUND, _record.UNREADABLE)


def job_output(entry: JobEntry) -> dict:
    """One job's part of the result: its state, its text per stream, where to go on, and whether it is all read."""
    job = entry.job
    result: dict = {
        "ansible_job_id": entry.ansible_job_id,
        "state": job.get("state"),
        "finished": entry.finished,
        "job": dict(job),
    }
    output = entry.output or {}
    if job.get("state") in _NO_JOB:
        result.update(failed=True, msg=job.get("msg") or f"job {entry.ansible_job_id} cannot be read")
        return result
    if output.get("hidden"):
        # Not even the sizes: they say something about what is hidden.
        result.update(hidden=True, msg=output.get("msg"), complete=entry.finished)
        return result
    reads = {stream: dict(output.get(stream) or {}) for stream in STREAMS}
    for stream, read in reads.items():
        result[stream] = read.pop("text", "")
    result.update(
        output=reads,
        next_since={stream: read.get("next_offset", 0) for stream, read in reads.items()},
        truncated=any(read.get("truncated") for read in reads.values()),
        complete=all(read.get("complete") for read in reads.values()),
    )
    return result


def output_result(reply: StatusReply, *, single: bool, skipped: int = 0) -> dict:
    """The task result of mode=output: the one job's keys at the top level, else a list of jobs."""
    jobs = [job_output(entry) for entry in reply.jobs]
    if single:
        (job,) = jobs
        result = dict(job, changed=False, started=True)
        result.setdefault("msg", _summary(jobs))
        return result
    problems = [job for job in jobs if job.get("failed")]
    result = {
        "changed": False,
        "jobs": jobs,
        "next_since": {job["ansible_job_id"]: job["next_since"] for job in jobs if "next_since" in job},
        "truncated": any(job.get("truncated") for job in jobs),
        "complete": all(job.get("complete") for job in jobs),
        "failed": bool(problems),
        "skipped_jobs": skipped,
        "msg": _summary(jobs),
    }
    if problems:
        result["msg"] += "; " + "; ".join(str(job["msg"]) for job in problems[:3])
    return result


def _summary(jobs: t.Sequence[dict]) -> str:
    sizes = sum(len(str(job.get(stream, "")).encode("utf-8", "surrogateescape")) for job in jobs for stream in STREAMS)
    hidden = sum(1 for job in jobs if job.get("hidden"))
    text = f"read {sizes} bytes of output from {len(jobs)} job{'s' if len(jobs) != 1 else ''}"
    if hidden:
        text += f" ({hidden} hidden by no_log)"
    if any(job.get("truncated") for job in jobs):
        text += "; more follows: read on from next_since"
    return text
