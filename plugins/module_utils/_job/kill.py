# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ending jobs on request (mode=kill): through their supervisor, or directly when it is gone."""

from __future__ import annotations

import dataclasses
import signal
import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._timing import KILL_SETTLE

_ORPHAN_POLL = 0.1


@dataclasses.dataclass
class KillOutcome:
    records: t.List[_record.JobRecord]
    # Jobs that were running (or waiting for their locks) and were (or, in check mode, would be) signalled.
    signalled: t.List[str]
    # Jobs that were running but cannot be killed by us, with the reason.
    refused: t.Dict[str, str]
    check_mode: bool = False

    @property
    def killed(self) -> t.List[str]:
        """The signalled jobs that the kill ended (or is still ending), in check mode those it would signal.

        A job can end on its own (succeeded, failed, timed out) in the moment it is signalled:
        its record then tells that end, and it was not killed.
        """
        if self.check_mode:
            return list(self.signalled)
        states = {record.jid: record.state for record in self.records}
        return [jid for jid in self.signalled if states.get(jid) in (_record.KILLED, *_record.ACTIVE_STATES)]


def kill_jobs(
    async_dir: str,
    jids: t.Sequence[str],
    *,
    signal_name: str,
    grace: int,
    wait: float,
    check_mode: bool = False,
) -> KillOutcome:
    """Kill the running jobs among jids and wait up to wait seconds for their final records."""
    first_signal = _signal_number(signal_name)
    records: t.Dict[str, _record.JobRecord] = {}
    signalled: t.List[str] = []
    refused: t.Dict[str, str] = {}
    for jid in jids:
        record = _status.inspect_job(async_dir, jid)
        if record.state in _record.ACTIVE_STATES:
            # A waiting supervisor answers the same request: the job then never starts.
            if record.origin != "longrun" or not record.pid:
                refused[jid] = _sentences.stock_job_not_killable(jid)
            else:
                if not check_mode:
                    _store.write_kill_request(async_dir, jid, signal_name=signal_name, grace=grace)
                    # The supervisor treats SIGUSR1 as a kill request and reads the request file.
                    _proc.send_signal([record.pid], signal.SIGUSR1)
                signalled.append(jid)
        elif record.state == _record.LOST and orphan_alive(record):
            if not check_mode:
                record = _kill_orphan(async_dir, record, first_signal, grace)
            signalled.append(jid)
        records[jid] = record
    waiting = [jid for jid in signalled if records[jid].state in _record.ACTIVE_STATES]
    if waiting and not check_mode:
        for record in _status.wait_for_jobs(async_dir, waiting, timeout=wait):
            records[record.jid] = record
    return KillOutcome(
        records=[records[jid] for jid in jids], signalled=signalled, refused=refused, check_mode=check_mode
    )


def _signal_number(name: str) -> int:
    number = getattr(signal, "SIG" + name, None)
    if not isinstance(number, int):
        raise ValueError(f"unknown signal {name!r}")
    return number


def orphan_alive(record: _record.JobRecord) -> bool:
    """The job process of a lost job still runs (only trusted when its start time was recorded)."""
    if not record.job_pid or record.job_start_time is None or record.reason == _record.REASON_HOST_REBOOTED:
        return False
    return _proc.is_same_process(record.job_pid, record.job_start_time)


def _kill_orphan(async_dir: str, record: _record.JobRecord, first_signal: int, grace: int) -> _record.JobRecord:
    """End a job whose supervisor died: its process, its group and its descendants."""
    job_pid = t.cast(int, record.job_pid)
    # Not our child: the routine looks every _ORPHAN_POLL seconds and reaps nothing.
    last = _proc.terminate_tree(
        job_pid,
        include_root=True,
        process_group=job_pid,
        grace=grace,
        first_signal=first_signal,
        wait_for_change=time.sleep,
        poll=_ORPHAN_POLL,
        final_wait=KILL_SETTLE,
    )
    record.kill(_proc.signal_name(first_signal), last, grace, orphan=True)
    try:
        _store.write_record(async_dir, record)
    except _store.StoreError:
        pass
    _store.remove_side_files(async_dir, record.jid, ".stdout", ".stderr", ".module", ".args")
    return record
