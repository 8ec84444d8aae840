# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mode=list and mode=cleanup on a real async dir, with real records, ages and (for force) real jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import housekeeping as _housekeeping
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

HOUR = 3600
DAY = 24 * HOUR


@pytest.fixture
def stand_in() -> t.Iterator[subprocess.Popen]:
    """A live process that running records name as their supervisor; a stray signal would end it."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)  # pylint: disable=consider-using-with
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


class Records:
    def __init__(self, async_dir: str, stand_in: subprocess.Popen) -> None:
        self.async_dir = async_dir
        self.stand_in = stand_in

    def _age(self, jid: str, age: float) -> None:
        moment = time.time() - age
        os.utime(_store.record_path(self.async_dir, jid), (moment, moment))

    def ended(self, jid: str, state: str = _record.SUCCEEDED, *, age: float = 0) -> None:
        _store.write_record(
            self.async_dir, _record.JobRecord(jid=jid, state=state, result={"failed": state != _record.SUCCEEDED})
        )
        for suffix in (".stdout", ".stderr"):
            os.close(_store.open_side_file(self.async_dir, jid, suffix))
        self._age(jid, age)

    def running(self, jid: str, *, age: float = 0) -> None:
        pid = self.stand_in.pid
        record = _record.JobRecord(
            jid=jid,
            state=_record.RUNNING,
            pid=pid,
            pid_start_time=_proc.process_start_time(pid),
            boot_id=_proc.read_boot_id(),
        )
        _store.write_record(self.async_dir, record)
        self._age(jid, age)

    def stock_running(self, jid: str, *, age: float = 0) -> None:
        Path(self.async_dir, jid).write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": jid}))
        self._age(jid, age)


@pytest.fixture
def records(async_dir, stand_in) -> Records:
    return Records(async_dir, stand_in)


def states_of(listed: t.Sequence[_housekeeping.ListedJob]) -> t.Dict[str, str]:
    return {job.record.jid: job.record.state for job in listed}


def test_list_jobs_reports_state_and_age_of_every_record(async_dir, records):
    records.ended("j1.1", age=2 * DAY)
    records.ended("j1.2", _record.FAILED, age=HOUR)
    records.running("j1.3", age=30)
    records.stock_running("j1.4")
    Path(async_dir, "notes.txt").write_text("not a record")

    listed = _housekeeping.list_jobs(async_dir)

    assert states_of(listed) == {"j1.1": "succeeded", "j1.2": "failed", "j1.3": "running", "j1.4": "running"}
    ages = {job.record.jid: job.age for job in listed}
    assert ages["j1.1"] == pytest.approx(2 * DAY, abs=5)
    assert ages["j1.2"] == pytest.approx(HOUR, abs=5)
    assert ages["j1.3"] == pytest.approx(30, abs=5)
    assert 0 <= ages["j1.4"] < 5
    assert [job.record.origin for job in listed] == ["longrun", "longrun", "longrun", "stock"]


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({"states": ["failed", "lost"]}, ["j1.2"]),
        ({"states": ["running"]}, ["j1.3"]),
        ({"older_than": DAY}, ["j1.1"]),
        ({"older_than": 60}, ["j1.1", "j1.2"]),
        ({"older_than": 10}, ["j1.1", "j1.2", "j1.3"]),
        ({"older_than": 60, "states": ["succeeded"]}, ["j1.1"]),
        ({"older_than": 3 * DAY}, []),
        ({"states": []}, []),
    ],
)
def test_list_jobs_filters(async_dir, records, filters, expected):
    records.ended("j1.1", age=2 * DAY)
    records.ended("j1.2", _record.FAILED, age=HOUR)
    records.running("j1.3", age=30)

    assert [job.record.jid for job in _housekeeping.list_jobs(async_dir, **filters)] == expected


def test_list_jobs_of_named_jobs_reports_missing_ones(async_dir, records):
    records.ended("j1.1")
    listed = _housekeeping.list_jobs(async_dir, jids=["j9.9", "j1.1"])
    assert states_of(listed) == {"j9.9": "not_found", "j1.1": "succeeded"}
    assert [job.record.jid for job in listed] == ["j9.9", "j1.1"]


def test_list_jobs_reports_unreadable_records(async_dir):
    Path(async_dir, "j1.1").write_text("{garbage")
    (job,) = _housekeeping.list_jobs(async_dir)
    assert job.record.state == _record.UNREADABLE


def test_list_jobs_finds_lost_jobs(async_dir):
    _store.write_record(async_dir, _record.JobRecord(jid="j1.1", state=_record.RUNNING, pid=2**22 + 12345))
    (job,) = _housekeeping.list_jobs(async_dir)
    assert job.record.state == _record.LOST


def test_list_jobs_of_a_missing_dir_is_empty(tmp_path):
    assert _housekeeping.list_jobs(str(tmp_path / "nowhere")) == []


def test_cleanup_removes_ended_records_and_spares_running_ones(async_dir, records, stand_in):
    records.ended("j1.1")
    records.ended("j1.2", _record.TIMED_OUT)
    records.running("j1.3")
    records.stock_running("j1.4")
    Path(async_dir, "j1.5").write_text("{garbage")

    outcome = _housekeeping.cleanup_jobs(async_dir, older_than=0)

    assert outcome.removed == ["j1.1", "j1.2", "j1.5"]
    assert outcome.spared == ["j1.3", "j1.4"]
    assert outcome.killed == []
    assert sorted(os.listdir(async_dir)) == ["j1.3", "j1.4"]
    assert stand_in.poll() is None


def test_cleanup_older_than_keeps_recent_records(async_dir, records):
    records.ended("j1.1", age=2 * DAY)
    records.ended("j1.2", age=HOUR)
    records.running("j1.3", age=3 * DAY)

    outcome = _housekeeping.cleanup_jobs(async_dir, older_than=DAY)

    assert outcome.removed == ["j1.1"]
    assert outcome.spared == ["j1.3"]
    assert sorted(os.listdir(async_dir)) == [".j1.2.stderr", ".j1.2.stdout", "j1.2", "j1.3"]


def test_cleanup_by_state(async_dir, records):
    records.ended("j1.1")
    records.ended("j1.2", _record.FAILED)
    records.running("j1.3")

    outcome = _housekeeping.cleanup_jobs(async_dir, states=["failed", "running"])

    assert outcome.removed == ["j1.2"]
    assert outcome.spared == ["j1.3"]
    assert _store.read_record(async_dir, "j1.1") is not None


def test_cleanup_of_named_jobs(async_dir, records):
    records.ended("j1.1")
    records.ended("j1.2")

    outcome = _housekeeping.cleanup_jobs(async_dir, jids=["j1.2", "j9.9"])

    assert outcome.removed == ["j1.2"]
    assert outcome.not_found == ["j9.9"]
    assert _store.read_record(async_dir, "j1.1") is not None


def test_cleanup_in_check_mode_reports_and_removes_nothing(async_dir, records, stand_in):
    records.ended("j1.1")
    records.running("j1.2")
    before = sorted(os.listdir(async_dir))

    outcome = _housekeeping.cleanup_jobs(async_dir, older_than=0, check_mode=True)

    assert outcome.removed == ["j1.1"]
    assert outcome.spared == ["j1.2"]
    assert sorted(os.listdir(async_dir)) == before
    assert stand_in.poll() is None


def test_force_kills_running_jobs_then_removes_them(async_dir, launcher, records):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    launcher.launch("import time; time.sleep(60)", jid="j1.2")
    records.ended("j1.3")
    records.stock_running("j1.4")
    metas = [launcher.meta(jid) for jid in ("j1.1", "j1.2")]

    outcome = _housekeeping.cleanup_jobs(async_dir, older_than=0, force=True, grace=0)

    assert outcome.killed == ["j1.1", "j1.2"]
    assert sorted(outcome.removed) == ["j1.1", "j1.2", "j1.3"]
    # Stock jobs cannot be killed safely, so even force keeps their records.
    assert outcome.spared == ["j1.4"]
    assert os.listdir(async_dir) == ["j1.4"]
    for meta in metas:
        assert not _proc.pid_alive(meta["job_pid"])


def test_force_with_other_states_leaves_running_jobs_alone(async_dir, launcher, records):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    records.ended("j1.2", _record.FAILED)

    outcome = _housekeeping.cleanup_jobs(async_dir, states=["failed"], force=True, grace=0)

    assert outcome.removed == ["j1.2"]
    assert outcome.killed == []
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING


def test_force_in_check_mode_kills_nothing(async_dir, launcher):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")

    outcome = _housekeeping.cleanup_jobs(async_dir, jids=["j1.1"], force=True, grace=0, check_mode=True)

    assert outcome.killed == ["j1.1"]
    assert outcome.removed == ["j1.1"]
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING
    assert _proc.pid_alive(launcher.meta("j1.1")["job_pid"])


def test_force_kills_the_live_process_of_a_lost_job_before_removing_its_record(async_dir, launcher, wait_until):
    launcher.launch("import time; time.sleep(60)", jid="j1.1", grace=0)
    meta = launcher.meta("j1.1")
    os.kill(meta["pid"], signal.SIGKILL)
    wait_until(lambda: _status.inspect_job(async_dir, "j1.1").state == _record.LOST, what="the job to be lost")

    outcome = _housekeeping.cleanup_jobs(async_dir, older_than=0, force=True, grace=0)

    assert outcome.removed == ["j1.1"]
    assert not _proc.pid_alive(meta["job_pid"])
    assert outcome.killed == ["j1.1"]


def test_force_does_not_count_a_job_that_ended_on_its_own_as_killed(async_dir, job_ending_when_killed):
    job_ending_when_killed("j1.1")

    outcome = _housekeeping.cleanup_jobs(async_dir, jids=["j1.1"], force=True, grace=0)

    assert outcome.killed == []
    assert outcome.removed == ["j1.1"]
