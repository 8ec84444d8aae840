# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _proc, _record, _status_request, _store, _supervisor


def params(async_dir: str, jid: str, *, mode: str = "status", wait: float = 0, remove_ended: bool = False) -> dict:
    return {"jid": jid, "mode": mode, "wait": wait, "_async_dir": async_dir, "_remove_ended": remove_ended}


def write_ended(async_dir: str, jid: str = "j1.1") -> None:
    _store.write_record(
        async_dir, _record.JobRecord(jid=jid, state=_record.SUCCEEDED, result={"changed": True, "x": 1})
    )
    for suffix in (".stdout", ".stderr"):
        os.close(_store.open_side_file(async_dir, jid, suffix))


def write_running(async_dir: str, jid: str = "j1.1") -> None:
    # This test process stands in for the supervisor, so the job is alive by construction.
    _store.write_record(
        async_dir,
        _record.JobRecord(
            jid=jid,
            state=_record.RUNNING,
            pid=os.getpid(),
            pid_start_time=_proc.process_start_time(os.getpid()),
            boot_id=_proc.read_boot_id(),
        ),
    )


def test_status_of_an_ended_job(async_dir):
    write_ended(async_dir)
    result = _status_request.handle_request(params(async_dir, "j1.1"))
    assert result["changed"] is False
    assert result["removed"] == []
    (entry,) = result["jobs"]
    assert entry["ansible_job_id"] == "j1.1"
    assert entry["results_file"] == os.path.join(async_dir, "j1.1")
    assert entry["finished"] is True
    assert entry["failed"] is False
    assert entry["result"] == {"changed": True, "x": 1}
    assert entry["job"]["state"] == _record.SUCCEEDED
    assert os.path.exists(os.path.join(async_dir, "j1.1"))


def test_status_with_remove_ended_removes_the_files(async_dir):
    write_ended(async_dir)
    result = _status_request.handle_request(params(async_dir, "j1.1", remove_ended=True))
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert os.listdir(async_dir) == []


def test_status_of_a_running_job_waits_and_reports_running(async_dir):
    write_running(async_dir)
    result = _status_request.handle_request(params(async_dir, "j1.1", wait=0.2, remove_ended=True))
    (entry,) = result["jobs"]
    assert entry["finished"] is False
    assert entry["result"] is None
    assert result["removed"] == []
    assert os.listdir(async_dir) == ["j1.1"]


def test_status_of_a_missing_job(async_dir):
    result = _status_request.handle_request(params(async_dir, "j9.9", remove_ended=True))
    (entry,) = result["jobs"]
    assert entry["failed"] is True
    assert entry["job"]["state"] == _record.NOT_FOUND
    assert result["removed"] == []


def test_cleanup_of_an_ended_job_removes_its_files(async_dir):
    write_ended(async_dir)
    write_ended(async_dir, "j1.2")
    result = _status_request.handle_request(params(async_dir, "j1.1", mode="cleanup"))
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert sorted(os.listdir(async_dir)) == [".j1.2.stderr", ".j1.2.stdout", "j1.2"]


def test_cleanup_of_a_running_job_keeps_its_record(async_dir):
    write_running(async_dir)
    result = _status_request.handle_request(params(async_dir, "j1.1", mode="cleanup"))
    assert result["changed"] is False
    assert result["removed"] == []
    (entry,) = result["jobs"]
    assert entry["failed"] is True
    assert entry["job"]["reason"] == "running"
    assert "still running" in entry["job"]["msg"]
    assert _store.read_record(async_dir, "j1.1").state == _record.RUNNING


def test_cleanup_of_a_missing_job_changes_nothing(async_dir):
    result = _status_request.handle_request(params(async_dir, "j9.9", mode="cleanup"))
    assert result["changed"] is False
    assert result["removed"] == []


@pytest.mark.parametrize("mode", ["status", "cleanup"])
@pytest.mark.parametrize("jid", ["../victim", "../async/../victim", "j1/../../victim", "VICTIM_ABSOLUTE"])
def test_traversal_jid_is_refused_and_touches_nothing(tmp_path, async_dir, mode, jid):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    if jid == "VICTIM_ABSOLUTE":
        jid = str(victim)
    with pytest.raises(_status_request.RequestError, match="not a job id"):
        _status_request.handle_request(params(async_dir, jid, mode=mode, remove_ended=True))
    assert victim.read_text() == "precious"
    assert os.listdir(async_dir) == []


@pytest.mark.parametrize("mode", ["status", "cleanup"])
def test_negative_wait_is_refused(async_dir, mode):
    write_ended(async_dir)
    with pytest.raises(_status_request.RequestError, match="wait must be 0 or more"):
        _status_request.handle_request(params(async_dir, "j1.1", mode=mode, wait=-1))
    assert os.path.exists(os.path.join(async_dir, "j1.1"))


def test_empty_async_dir_is_refused():
    with pytest.raises(_status_request.RequestError, match="async dir is empty"):
        _status_request.handle_request(params("", "j1.1"))


def test_status_then_cleanup_of_a_real_job(async_dir, janitor):
    spec = _supervisor.LaunchSpec(
        jid="j7.7", async_dir=async_dir, timeout=20, grace=1, interpreter=sys.executable, payload=b"print('{\"x\": 1}')"
    )
    _supervisor.launch(spec)
    meta = json.loads(Path(async_dir, "j7.7").read_text())[_record.META_KEY]
    janitor.track_supervisor(meta["pid"], meta["pid_start_time"])
    status = _status_request.handle_request(params(async_dir, "j7.7", wait=20))
    (entry,) = status["jobs"]
    assert entry["finished"] is True
    assert entry["result"] == {"x": 1}
    cleanup = _status_request.handle_request(params(async_dir, "j7.7", mode="cleanup"))
    assert cleanup["removed"] == ["j7.7"]
    assert not Path(async_dir, "j7.7").exists()
