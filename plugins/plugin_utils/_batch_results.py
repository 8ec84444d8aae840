# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The result of a call about many jobs: one entry per job, counts per state and a one-line summary."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry

# The order in which states appear in summaries: outcomes first, then what is still going on.
SUMMARY_ORDER = (
    _record.SUCCEEDED,
    _record.FAILED,
    _record.TIMED_OUT,
    _record.KILLED,
    _record.LOST,
    _record.NOT_FOUND,
    _record.UNREADABLE,
    _record.RUNNING,
    _record.WAITING,
)
DETAILS_PER_STATE = 3
_DETAIL_LENGTH = 60


def flat_entry(entry: JobEntry) -> dict:
    """One job of a batch result, from a job entry as the target reports it."""
    job = entry.job
    result = entry.result if entry.finished else None
    # rc is the module's own (command's exit status, for example); many modules return none, and the
    # exit code of the module process (1 for any module that fails) is no substitute: it is exit_code.
    rc = result.get("rc") if isinstance(result, dict) else None
    flat = {
        "ansible_job_id": entry.ansible_job_id,
        "state": job.get("state"),
        "reason": job.get("reason"),
        "finished": entry.finished,
        "failed": entry.failed,
        "started_at": job.get("started_at"),
        "ended_at": job.get("ended_at"),
        "duration": job.get("duration"),
        "timeout": job.get("timeout"),
        "rc": rc,
        "exit_code": job.get("exit_code"),
        "msg": job.get("msg"),
        "progress": job.get("progress"),
        "result": result,
    }
    if job.get("waiting_for"):
        # Only while the job waits for its locks: the lock and its holder.
        flat["waiting_for"] = job["waiting_for"]
    return flat


def listed_entry(entry: JobEntry) -> dict:
    """One job of mode=list: its state and age, without the (possibly large) module result."""
    job = entry.job
    return {
        "ansible_job_id": entry.ansible_job_id,
        "state": job.get("state"),
        "reason": job.get("reason"),
        "age": entry.age,
        "started_at": job.get("started_at"),
        "ended_at": job.get("ended_at"),
        "duration": job.get("duration"),
        "origin": job.get("origin"),
        "msg": job.get("msg"),
    }


def summarize(entries: t.Sequence[t.Mapping[str, t.Any]]) -> dict:
    """A count per state (every state, zeros included) plus total."""
    counts = {state: 0 for state in SUMMARY_ORDER}
    for entry in entries:
        state = entry.get("state")
        counts[state] = counts.get(state, 0) + 1
    counts["total"] = len(entries)
    return counts


def batch_result(entries: t.Sequence[t.Mapping[str, t.Any]], *, skipped: int = 0) -> dict:
    """jobs, summary, failed_jobs, finished, failed and msg for flat entries."""
    failed_jobs = [
        {"ansible_job_id": entry["ansible_job_id"], "state": entry["state"], "msg": entry.get("msg")}
        for entry in entries
        if entry.get("failed")
    ]
    return {
        "jobs": list(entries),
        "summary": summarize(entries),
        "ignored": skipped,
        "failed_jobs": failed_jobs,
        "finished": all(entry.get("finished") for entry in entries),
        "failed": bool(failed_jobs),
        "msg": summary_line(entries, skipped=skipped),
    }


def summary_line(entries: t.Sequence[t.Mapping[str, t.Any]], *, skipped: int = 0) -> str:
    """For example: 5 jobs: 3 succeeded, 1 failed (j1.2: rc=3), 1 timed_out (j4.5 after 3 s)."""
    by_state: t.Dict[str, t.List[t.Mapping[str, t.Any]]] = {}
    for entry in entries:
        by_state.setdefault(str(entry.get("state")), []).append(entry)
    parts = []
    for state in [*SUMMARY_ORDER, *sorted(set(by_state) - set(SUMMARY_ORDER))]:
        members = by_state.get(state)
        if not members:
            continue
        part = f"{len(members)} {state}"
        if state not in (_record.SUCCEEDED, _record.RUNNING, _record.WAITING):
            details = [_detail(entry) for entry in members[:DETAILS_PER_STATE]]
            if len(members) > DETAILS_PER_STATE:
                details.append(f"{len(members) - DETAILS_PER_STATE} more")
            part += f" ({', '.join(details)})"
        parts.append(part)
    noun = "job" if len(entries) == 1 else "jobs"
    line = f"{len(entries)} {noun}"
    if parts:
        line += ": " + ", ".join(parts)
    if skipped:
        line += f"; {skipped} item{'s' if skipped != 1 else ''} without a job id ignored"
    return line


def _detail(entry: t.Mapping[str, t.Any]) -> str:
    jid = entry.get("ansible_job_id")
    state = entry.get("state")
    if state == _record.TIMED_OUT and entry.get("timeout") is not None:
        return f"{jid} after {entry['timeout']} s"
    if state == _record.FAILED:
        if entry.get("reason") == _record.REASON_MODULE_CRASHED:
            return f"{jid}: crashed"
        if entry.get("rc") not in (None, 0):
            return f"{jid}: rc={entry['rc']}"
        result = entry.get("result") or {}
        text = str(result.get("msg") or "failed").splitlines()[0] if isinstance(result, dict) else "failed"
        if len(text) > _DETAIL_LENGTH:
            text = text[: _DETAIL_LENGTH - 3] + "..."
        return f"{jid}: {text}"
    if state == _record.LOST and entry.get("reason"):
        return f"{jid}: {entry['reason']}"
    return str(jid)
