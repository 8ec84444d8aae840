# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Listing the async dir and removing old records (mode=list and mode=cleanup)."""

from __future__ import annotations

import dataclasses
import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store


@dataclasses.dataclass
class ListedJob:
    record: _record.JobRecord
    # Seconds since the record was last written: since the start for a running job, since the end otherwise.
    age: float


@dataclasses.dataclass
class CleanupOutcome:
    removed: t.List[str] = dataclasses.field(default_factory=list)
    # Running jobs that matched but were kept, because force was not set (or they cannot be killed).
    spared: t.List[str] = dataclasses.field(default_factory=list)
    killed: t.List[str] = dataclasses.field(default_factory=list)
    not_found: t.List[str] = dataclasses.field(default_factory=list)
    listed: t.List[ListedJob] = dataclasses.field(default_factory=list)


def list_jobs(
    async_dir: str,
    *,
    jids: t.Optional[t.Sequence[str]] = None,
    states: t.Optional[t.Collection[str]] = None,
    older_than: t.Optional[float] = None,
) -> t.List[ListedJob]:
    """Jobs of the async dir (or the named ones) with their state and age, filtered."""
    now = time.time()
    listed = []
    for jid in _store.list_jids(async_dir) if jids is None else jids:
        written = _store.record_mtime(async_dir, jid)
        age = max(0.0, now - written) if written is not None else 0.0
        # The age filter costs one stat, so it runs before the record is read.
        if written is not None and older_than is not None and age < older_than:
            continue
        record = _status.inspect_job(async_dir, jid)
        if jids is None and record.state == _record.NOT_FOUND:
            continue  # removed since the directory was listed
        if states is not None and record.state not in states:
            continue
        listed.append(ListedJob(record=record, age=round(age, 3)))
    return listed


def cleanup_jobs(
    async_dir: str,
    *,
    jids: t.Optional[t.Sequence[str]] = None,
    states: t.Optional[t.Collection[str]] = None,
    older_than: t.Optional[float] = None,
    force: bool = False,
    signal_name: str = "TERM",
    grace: int = 5,
    check_mode: bool = False,
) -> CleanupOutcome:
    """Remove the records (and side files) of matching jobs that have ended.

    A running job's record is never removed unless force is set, and then only
    after the job was killed and its end recorded.
    """
    outcome = CleanupOutcome()
    outcome.listed = list_jobs(async_dir, jids=jids, states=states, older_than=older_than)
    running = []
    for job in outcome.listed:
        record = job.record
        if record.state == _record.NOT_FOUND:
            outcome.not_found.append(record.jid)
        elif record.state in _record.ACTIVE_STATES or _kill.orphan_alive(record):
            # A lost job whose process still runs is treated as running: its record is the only way to kill it.
            running.append(record.jid)
        else:
            _remove(async_dir, record.jid, outcome, check_mode)
    if running and force:
        killed = _kill.kill_jobs(
            async_dir, running, signal_name=signal_name, grace=grace,
            wait=grace + _kill.KILL_SETTLE, check_mode=check_mode,
        )
        ended_by_kill = killed.killed
        for record in killed.records:
            if check_mode and record.jid in killed.signalled:
                outcome.killed.append(record.jid)
                outcome.removed.append(record.jid)
            elif record.finished:
                if record.jid in ended_by_kill:
                    outcome.killed.append(record.jid)
                _remove(async_dir, record.jid, outcome, check_mode)
            else:
                outcome.spared.append(record.jid)
    else:
        outcome.spared.extend(running)
    return outcome


def _remove(async_dir: str, jid: str, outcome: CleanupOutcome, check_mode: bool) -> None:
    if check_mode or _store.remove_job_files(async_dir, jid):
        outcome.removed.append(jid)
