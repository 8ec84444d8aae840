# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store


def running_here(jid: str = "j1.1", **changes) -> _record.JobRecord:
    """A running record whose supervisor is this test process, so it is alive by construction."""
    values = {
        "jid": jid,
        "state": _record.RUNNING,
        "pid": os.getpid(),
        "pid_start_time": _proc.process_start_time(os.getpid()),
        "boot_id": _proc.read_boot_id(),
        "started_at": _record.format_time(_record.utc_now()),
        "timeout": 60,
    }
    values.update(changes)
    return _record.JobRecord(**values)


def test_inspect_job_without_a_record_is_not_found(async_dir):
    record = _status.inspect_job(async_dir, "j1.1")
    assert record.state == _record.NOT_FOUND
    assert record.reason == _record.REASON_NO_RECORD
    assert async_dir in record.msg
    assert os.listdir(async_dir) == []


def test_inspect_job_of_a_garbage_record_is_unreadable(async_dir):
    Path(async_dir, "j1.1").write_text("{garbage")
    record = _status.inspect_job(async_dir, "j1.1")
    assert record.state == _record.UNREADABLE
    assert record.reason == _record.REASON_BAD_RECORD
    assert os.path.join(async_dir, "j1.1") in record.msg
    # Never "repaired" behind the user's back.
    assert Path(async_dir, "j1.1").read_text() == "{garbage"


def test_inspect_job_of_a_wrongly_typed_record_is_unreadable(async_dir):
    Path(async_dir, "j1.1").write_text(
        json.dumps({"started": True, _record.META_KEY: {"state": "running", "schema": 1, "pid": "abc"}})
    )
    assert _status.inspect_job(async_dir, "j1.1").state == _record.UNREADABLE


def test_inspect_job_keeps_a_live_running_job_running(async_dir):
    _store.write_record(async_dir, running_here())
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING


def test_inspect_job_of_a_dead_supervisor_is_lost_and_persisted(async_dir):
    # Same pid, other start time: the recorded supervisor is gone and its pid was reused.
    start = _proc.process_start_time(os.getpid())
    _store.write_record(async_dir, running_here(pid_start_time=start + 1))
    record = _status.inspect_job(async_dir, "j1.1")
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_SUPERVISOR_GONE
    assert record.failed and record.finished
    assert record.result == {"failed": True, "msg": record.msg}
    document = json.loads(Path(async_dir, "j1.1").read_text())
    assert "started" not in document
    assert document[_record.META_KEY]["state"] == _record.LOST
    assert _store.read_record(async_dir, "j1.1").state == _record.LOST


def test_inspect_job_after_a_reboot_is_lost(async_dir):
    _store.write_record(async_dir, running_here(boot_id="00000000-0000-0000-0000-000000000000"))
    if _proc.read_boot_id() is None:
        pytest.skip("this host has no readable boot id")
    record = _status.inspect_job(async_dir, "j1.1")
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_HOST_REBOOTED


def test_inspect_job_leaves_stock_running_records_alone(async_dir):
    Path(async_dir, "123.45").write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": "123.45"}))
    record = _status.inspect_job(async_dir, "123.45")
    assert (record.state, record.origin) == (_record.RUNNING, "stock")


def test_wait_for_jobs_with_no_time_returns_at_once(async_dir):
    _store.write_record(async_dir, running_here())
    started = time.monotonic()
    (record,) = _status.wait_for_jobs(async_dir, ["j1.1"], timeout=0)
    assert record.state == _record.RUNNING
    assert time.monotonic() - started < 0.5


def test_wait_for_jobs_gives_up_after_the_timeout(async_dir):
    _store.write_record(async_dir, running_here())
    started = time.monotonic()
    (record,) = _status.wait_for_jobs(async_dir, ["j1.1"], timeout=0.4)
    elapsed = time.monotonic() - started
    assert record.state == _record.RUNNING
    assert 0.4 <= elapsed < 1.5


def test_wait_for_jobs_sees_an_end_written_meanwhile(async_dir):
    _store.write_record(async_dir, running_here())
    end = running_here(state=_record.SUCCEEDED, result={"changed": True})
    writer = threading.Timer(0.3, _store.write_record, (async_dir, end))
    writer.start()
    try:
        started = time.monotonic()
        (record,) = _status.wait_for_jobs(async_dir, ["j1.1"], timeout=10)
    finally:
        writer.join()
    assert record.state == _record.SUCCEEDED
    assert record.result == {"changed": True}
    assert time.monotonic() - started < 2


def test_wait_for_jobs_any_returns_on_the_first_end(async_dir):
    _store.write_record(async_dir, running_here("j1.1"))
    _store.write_record(async_dir, running_here("j1.2", state=_record.SUCCEEDED, result={}))
    started = time.monotonic()
    first, second = _status.wait_for_jobs(async_dir, ["j1.1", "j1.2"], timeout=10, return_when="any")
    assert time.monotonic() - started < 1
    assert (first.state, second.state) == (_record.RUNNING, _record.SUCCEEDED)


def test_wait_for_jobs_reports_missing_jobs_at_once(async_dir):
    started = time.monotonic()
    (record,) = _status.wait_for_jobs(async_dir, ["j9.9"], timeout=10)
    assert record.state == _record.NOT_FOUND
    assert time.monotonic() - started < 1
