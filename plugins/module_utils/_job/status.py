# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's true state: its record checked against the live system, and waiting for ends."""

from __future__ import annotations

import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import dirwatch as _dirwatch
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import progress as _progress
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._timing import LIVENESS_INTERVAL


def inspect_job(async_dir: str, jid: str) -> _record.JobRecord:
    """The job's state, with running records checked for a dead supervisor or a reboot, and its latest progress."""
    return with_progress(async_dir, _inspect(async_dir, jid))


def with_progress(async_dir: str, record: _record.JobRecord) -> _record.JobRecord:
    """The record with the job's latest progress report: read from its file unless the ended record keeps it."""
    if record.origin == "longrun" and record.state not in (_record.NOT_FOUND, _record.UNREADABLE):
        if not record.finished or record.progress is None:
            record.progress = _progress.read_progress(async_dir, record.jid, ended=record.finished) or record.progress
    return record


def _inspect(async_dir: str, jid: str) -> _record.JobRecord:
    record = _read(async_dir, jid)
    if record.state not in _record.ACTIVE_STATES or record.origin != "longrun":
        return record
    reason = _why_lost(record)
    if reason is None:
        return record
    # The supervisor may have written the end and exited since we read.
    record = _read(async_dir, jid)
    if record.state not in _record.ACTIVE_STATES:
        return record
    # A waiting job never started: nothing of it can be recovered.
    if reason == _record.REASON_SUPERVISOR_GONE and record.state == _record.RUNNING and not _module_running(record):
        recovered = _recover_end(async_dir, jid)
        if recovered is not None:
            return recovered
        # Another reader may have recorded the end meanwhile.
        record = _read(async_dir, jid)
        if record.state not in _record.ACTIVE_STATES:
            return record
    problem = _store.file_system_problem(async_dir) if reason == _record.REASON_SUPERVISOR_GONE else None
    record.lose(reason, file_system_problem=problem, async_dir=async_dir)
    try:
        # Persisting it lets stock async_status see the end too. The file keeps its age:
        # list and cleanup filter on it, and finding the loss is not the job's end.
        _store.write_record(async_dir, record, keep_age=True)
    except _store.StoreError:
        pass
    return record


def _read(async_dir: str, jid: str) -> _record.JobRecord:
    try:
        record = _store.read_record(async_dir, jid)
    except _store.RecordUnreadable as exc:
        return _record.JobRecord.unreadable(jid, exc)
    if record is None:
        return _record.JobRecord.not_found(jid, async_dir)
    return record


def _module_running(record: _record.JobRecord) -> bool:
    return bool(record.job_pid) and _proc.is_same_process(record.job_pid, record.job_start_time)


def _recover_end(async_dir: str, jid: str) -> t.Optional[_record.JobRecord]:
    """The end of a job whose supervisor died, from its module's complete output, or None."""
    # Imported here: only a job whose supervisor died needs it.
    from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome  # pylint: disable=import-outside-toplevel

    try:
        return _outcome.recover_end(async_dir, jid)
    except (_store.StoreError, OSError, ValueError):
        return None


def _why_lost(record: _record.JobRecord) -> t.Optional[str]:
    """The reason an active (running or waiting) record is lost (a reboot, a dead supervisor), or None while it runs."""
    current_boot = _proc.read_boot_id()
    if record.boot_id and current_boot and record.boot_id != current_boot:
        return _record.REASON_HOST_REBOOTED
    if record.pid and not _proc.is_same_process(record.pid, record.pid_start_time):
        return _record.REASON_SUPERVISOR_GONE
    return None


def wait_for_jobs(
    async_dir: str,
    jids: t.Sequence[str],
    *,
    timeout: float,
    return_when: str = "all",
) -> t.List[_record.JobRecord]:
    """Inspect jobs until all (or any) have ended or timeout seconds pass.

    The waiter sleeps until a record in the async dir is replaced (inotify, or a
    0.1 s poll without it); records are only re-read when their file changed.
    Liveness of running jobs is re-checked every LIVENESS_INTERVAL.
    """
    deadline = time.monotonic() + max(0.0, timeout)
    # The watch comes first, then the fingerprints, then the reads: a record replaced
    # in between is seen as changed, and its event wakes the first sleep.
    with _dirwatch.DirWatch(async_dir) as watch:
        signatures = {jid: _store.record_signature(async_dir, jid) for jid in jids}
        # Progress is read once, as the wait ends, not at every look at a record.
        records = {jid: _inspect(async_dir, jid) for jid in jids}
        next_liveness = time.monotonic() + LIVENESS_INTERVAL
        while True:
            ended = [jid for jid in jids if records[jid].finished]
            if len(ended) == len(jids) or (return_when == "any" and ended):
                break
            now = time.monotonic()
            if now >= deadline:
                break
            watch.wait(min(deadline, next_liveness) - now)
            check_liveness = time.monotonic() >= next_liveness
            if check_liveness:
                next_liveness = time.monotonic() + LIVENESS_INTERVAL
            for jid in jids:
                if records[jid].finished:
                    continue
                signature = _store.record_signature(async_dir, jid)
                if check_liveness or signature != signatures[jid]:
                    signatures[jid] = signature
                    records[jid] = _inspect(async_dir, jid)
    return [with_progress(async_dir, records[jid]) for jid in jids]
