# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller lease: its file, its renewal, and a supervisor that kills its job once it expires."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _protocol
from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import lease as _lease
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

JID = "j7.1"
SLEEPER = "import time; time.sleep(120)"


def lease_path(async_dir: str, jid: str = JID) -> str:
    return os.path.join(async_dir, f".{jid}.lease")


def write_running_record(async_dir: str, jid: str = JID) -> None:
    _store.write_record(async_dir, _record.JobRecord(jid=jid, state=_record.RUNNING, pid=os.getpid()))


def launch(async_dir: str, janitor, *, lease, timeout: int = 60, grace: int = 1, jid: str = JID) -> dict:
    spec = _handshake.LaunchSpec(
        jid=jid, async_dir=async_dir, timeout=timeout, grace=grace, interpreter=sys.executable,
        payload=textwrap.dedent(SLEEPER).encode("utf-8"), lease=lease,
    )
    job = _handshake.launch(spec)
    janitor.track_job(async_dir, jid)
    return job


def test_start_lease_writes_a_private_file(async_dir):
    expires_at = _lease.start_lease(async_dir, JID, 15, now=1000.0)
    assert expires_at == 1015.0
    path = lease_path(async_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as handle:
        assert json.load(handle) == {"expires_at": 1015.0, "seconds": 15}
    assert _store.read_lease(async_dir, JID) == (1015.0, 15)


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"expires_at": "soon", "seconds": 5}', '{"expires_at": 5, "seconds": -1}',
     '{"expires_at": true, "seconds": 5}', '{"expires_at": 5}'],
)
def test_a_malformed_lease_reads_as_none(async_dir, content):
    with open(lease_path(async_dir), "w", encoding="utf-8") as handle:
        handle.write(content)
    assert _store.read_lease(async_dir, JID) is None


def test_renewal_pushes_the_lease_back_by_the_wait_and_its_seconds(async_dir):
    write_running_record(async_dir)
    _lease.start_lease(async_dir, JID, 10, now=1000.0)
    assert _lease.renew_leases(async_dir, [JID], wait=5, now=1003.0) == [JID]
    assert _store.read_lease(async_dir, JID) == (1018.0, 10)


def test_renewal_never_brings_the_lease_forward(async_dir):
    write_running_record(async_dir)
    _lease.start_lease(async_dir, JID, 10, now=1000.0)
    _lease.renew_leases(async_dir, [JID], wait=30, now=1001.0)
    assert _lease.renew_leases(async_dir, [JID], wait=0, now=1002.0) == []
    assert _store.read_lease(async_dir, JID) == (1041.0, 10)


def test_renewal_leaves_jobs_without_a_lease_and_names_alone(async_dir):
    write_running_record(async_dir)
    assert _lease.renew_leases(async_dir, [JID, "backup-db"], wait=5) == []
    assert not os.path.exists(lease_path(async_dir))


def test_renewal_leaves_no_lease_behind_a_job_whose_files_went(async_dir):
    _lease.start_lease(async_dir, JID, 10, now=1000.0)
    assert _lease.renew_leases(async_dir, [JID], wait=5, now=1001.0) == []
    assert not os.path.exists(lease_path(async_dir))


def test_lease_expiry_keeps_what_it_knew_when_the_file_is_gone(async_dir):
    assert _lease.lease_expiry(async_dir, JID, known=1000.0) == 1000.0
    _lease.start_lease(async_dir, JID, 10, now=1000.0)
    assert _lease.lease_expiry(async_dir, JID, known=900.0) == 1010.0
    assert _lease.lease_expiry(async_dir, JID, known=2000.0) == 2000.0


def test_a_status_request_renews_the_leases_of_the_jobs_it_names(async_dir):
    write_running_record(async_dir)
    _lease.start_lease(async_dir, JID, 10, now=time.time() - 100)
    request = _protocol.StatusRequest(jids=[JID], single=True, wait=0.2, async_dir=async_dir)
    before = time.time()
    _status_request.handle_request(request)
    expires_at, seconds = _store.read_lease(async_dir, JID)
    assert seconds == 10
    assert before + 0.2 + 10 <= expires_at <= time.time() + 10


def test_a_kill_request_does_not_renew_the_lease(async_dir):
    _store.write_record(async_dir, _record.JobRecord(jid=JID, state=_record.SUCCEEDED, result={}))
    _lease.start_lease(async_dir, JID, 10, now=1000.0)
    _status_request.handle_request(_protocol.StatusRequest(mode="list", jids=[JID], async_dir=async_dir))
    assert _store.read_lease(async_dir, JID) == (1010.0, 10)


def test_the_supervisor_kills_the_job_once_no_controller_renews_its_lease(async_dir, janitor):
    started = time.monotonic()
    first = launch(async_dir, janitor, lease=1)
    assert first["on_controller_loss"] == "kill"
    assert _store.read_lease(async_dir, JID)[1] == 1
    job_pid = _store.read_record(async_dir, JID).job_pid
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=10)
    elapsed = time.monotonic() - started
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_CONTROLLER_LOST
    assert record.signal == "SIGTERM"
    assert record.msg.startswith(f"job {JID} was killed because no controller waited on it for 1 s")
    assert record.result["failed"] is True
    assert record.public()["on_controller_loss"] == "kill"
    assert 1 <= elapsed <= 1 + 1 + 3
    assert not _proc.pid_alive(job_pid)


def test_renewals_keep_the_job_and_their_end_kills_it(async_dir, janitor):
    launch(async_dir, janitor, lease=1)
    renewing_until = time.monotonic() + 3
    while time.monotonic() < renewing_until:
        _lease.renew_leases(async_dir, [JID], wait=0.3)
        time.sleep(0.3)
    assert _status.inspect_job(async_dir, JID).state == _record.RUNNING
    stopped = time.monotonic()
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=10)
    assert record.reason == _record.REASON_CONTROLLER_LOST
    assert time.monotonic() - stopped <= 0.3 + 1 + 1 + 3


def test_a_job_without_a_lease_has_no_lease_file_and_keeps_running(async_dir, janitor):
    first = launch(async_dir, janitor, lease=None, timeout=3)
    assert "on_controller_loss" not in first
    assert not os.path.exists(lease_path(async_dir))
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=10)
    # Only its async limit ended it.
    assert record.state == _record.TIMED_OUT


def test_the_end_removes_the_lease_and_later_reads_make_none(async_dir, janitor):
    launch(async_dir, janitor, lease=1)
    _status.wait_for_jobs(async_dir, [JID], timeout=10)
    assert not os.path.exists(lease_path(async_dir))
    assert _lease.renew_leases(async_dir, [JID], wait=5) == []
    assert not os.path.exists(lease_path(async_dir))


def test_removing_the_job_files_removes_the_lease(async_dir):
    write_running_record(async_dir)
    _lease.start_lease(async_dir, JID, 10)
    _store.remove_job_files(async_dir, JID)
    assert not os.path.exists(lease_path(async_dir))


def test_a_job_waiting_for_a_lock_ends_once_no_controller_renews_its_lease(async_dir, janitor):
    holder = _handshake.LaunchSpec(
        jid="j1.1", async_dir=async_dir, timeout=60, grace=1, interpreter=sys.executable,
        payload=SLEEPER.encode("utf-8"), locks=["db"],
    )
    _handshake.launch(holder)
    janitor.track_job(async_dir, "j1.1")
    waiter = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=60, grace=1, interpreter=sys.executable,
        payload=SLEEPER.encode("utf-8"), locks=["db"], lease=1,
    )
    first = _handshake.launch(waiter)
    janitor.track_job(async_dir, JID)
    assert first["state"] == _record.WAITING
    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=10)
    assert (record.state, record.reason) == (_record.KILLED, _record.REASON_CONTROLLER_LOST)
    assert "while it waited for" in record.msg and record.msg.endswith("it never started")
    assert record.job_pid is None
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING
