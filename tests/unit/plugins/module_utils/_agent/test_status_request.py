# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _protocol
from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.plugin_utils._batch_results import listed_entry
from ansible_collections.longrun.jobs.plugins.plugin_utils._status_options import RequestError, parse_request


def params(async_dir: str, jid: str, *, mode: str = "status", wait: float = 0, remove_ended: bool = False) -> dict:
    return {"jid": jid, "mode": mode, "wait": wait, "_async_dir": async_dir, "_remove_ended": remove_ended}


def handle_request(params: dict) -> dict:
    """Serve options as the action sends them: checked on the controller, typed, over the wire, served here.

    mode=list entries come back in the shape the action returns them.
    """
    request = parse_request(params).replace(
        async_dir=params["_async_dir"],
        remove_ended=bool(params.get("_remove_ended")),
        check_mode=bool(params.get("_check_mode")),
        keep_undecodable=bool(params.get("_keep_undecodable")),
    )
    received = _protocol.StatusRequest.from_wire(json.loads(json.dumps(request.to_wire())))
    reply = _status_request.handle_request(received)
    wire = reply.to_wire()
    if request.mode == "list":
        wire["jobs"] = [listed_entry(entry) for entry in reply.jobs]
    return wire


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
    result = handle_request(params(async_dir, "j1.1"))
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
    result = handle_request(params(async_dir, "j1.1", remove_ended=True))
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert os.listdir(async_dir) == []


@pytest.mark.parametrize("keep_undecodable", [True, False])
def test_remove_ended_keeps_a_result_with_bytes_that_are_not_utf8_when_asked(async_dir, keep_undecodable):
    # Bytes that are not UTF-8 come out of the record as surrogate escapes; a strict controller refuses them.
    stdout = b"caf\xc3\xa9 \xff end".decode("utf-8", "surrogateescape")
    _store.write_record(async_dir, _record.JobRecord(jid="j1.1", state=_record.SUCCEEDED, result={"stdout": stdout}))
    write_ended(async_dir, "j1.2")
    result = handle_request({
        "jobs": ["j1.1", "j1.2"], "mode": "status", "wait": 0, "_async_dir": async_dir, "_remove_ended": True,
        "_keep_undecodable": keep_undecodable,
    })
    assert [entry["result"] for entry in result["jobs"]][0] == {"stdout": stdout}
    if keep_undecodable:
        assert result["removed"] == ["j1.2"]
        assert "j1.1" in os.listdir(async_dir)
    else:
        assert result["removed"] == ["j1.1", "j1.2"]


def test_status_of_a_running_job_waits_and_reports_running(async_dir):
    write_running(async_dir)
    result = handle_request(params(async_dir, "j1.1", wait=0.2, remove_ended=True))
    (entry,) = result["jobs"]
    assert entry["finished"] is False
    assert entry["result"] is None
    assert result["removed"] == []
    assert os.listdir(async_dir) == ["j1.1"]


def test_status_of_a_missing_job(async_dir):
    result = handle_request(params(async_dir, "j9.9", remove_ended=True))
    (entry,) = result["jobs"]
    assert entry["failed"] is True
    assert entry["job"]["state"] == _record.NOT_FOUND
    assert result["removed"] == []


def test_cleanup_of_an_ended_job_removes_its_files(async_dir):
    write_ended(async_dir)
    write_ended(async_dir, "j1.2")
    result = handle_request(params(async_dir, "j1.1", mode="cleanup"))
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert sorted(os.listdir(async_dir)) == [".j1.2.stderr", ".j1.2.stdout", "j1.2"]


def test_cleanup_of_a_running_job_keeps_its_record(async_dir):
    write_running(async_dir)
    result = handle_request(params(async_dir, "j1.1", mode="cleanup"))
    assert result["changed"] is False
    assert result["removed"] == []
    (entry,) = result["jobs"]
    assert entry["failed"] is True
    assert entry["job"]["reason"] == "running"
    assert "still running" in entry["job"]["msg"]
    assert _store.read_record(async_dir, "j1.1").state == _record.RUNNING


def test_cleanup_of_a_missing_job_changes_nothing(async_dir):
    result = handle_request(params(async_dir, "j9.9", mode="cleanup"))
    assert result["changed"] is False
    assert result["removed"] == []


@pytest.mark.parametrize("mode", ["status", "cleanup"])
@pytest.mark.parametrize("jid", ["../victim", "../async/../victim", "j1/../../victim", "VICTIM_ABSOLUTE"])
def test_traversal_jid_is_refused_and_touches_nothing(tmp_path, async_dir, mode, jid):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    if jid == "VICTIM_ABSOLUTE":
        jid = str(victim)
    # Refused on the controller, and by the agent for a request that did not come through it.
    with pytest.raises(RequestError, match="not a job id"):
        handle_request(params(async_dir, jid, mode=mode, remove_ended=True))
    message = _protocol.StatusRequest(mode=mode, jids=[jid], single=True, remove_ended=True, async_dir=async_dir).to_wire()
    with pytest.raises(_agent.AgentError, match="not a job id"):
        _agent.serve(message)
    assert victim.read_text() == "precious"
    assert os.listdir(async_dir) == []


@pytest.mark.parametrize("mode", ["status", "cleanup"])
def test_negative_wait_is_refused(async_dir, mode):
    write_ended(async_dir)
    with pytest.raises(RequestError, match="wait must be 0 or more"):
        handle_request(params(async_dir, "j1.1", mode=mode, wait=-1))
    assert os.path.exists(os.path.join(async_dir, "j1.1"))


def test_empty_async_dir_is_refused():
    with pytest.raises(_status_request.RequestError, match="async dir is empty"):
        handle_request(params("", "j1.1"))


def test_status_then_cleanup_of_a_real_job(async_dir, janitor):
    spec = _handshake.LaunchSpec(
        jid="j7.7", async_dir=async_dir, timeout=20, grace=1, interpreter=sys.executable, payload=b"print('{\"x\": 1}')"
    )
    _handshake.launch(spec)
    meta = json.loads(Path(async_dir, "j7.7").read_text())[_record.META_KEY]
    janitor.track_supervisor(meta["pid"], meta["pid_start_time"])
    status = handle_request(params(async_dir, "j7.7", wait=20))
    (entry,) = status["jobs"]
    assert entry["finished"] is True
    assert entry["result"] == {"x": 1}
    cleanup = handle_request(params(async_dir, "j7.7", mode="cleanup"))
    assert cleanup["removed"] == ["j7.7"]
    assert not Path(async_dir, "j7.7").exists()


def test_status_of_many_jobs_waits_for_all(async_dir, launcher):
    launcher.launch("print('{\"n\": 1}')", jid="j1.1")
    launcher.launch('import time; time.sleep(0.3); print(\'{"failed": true, "rc": 3}\')', jid="j1.2")
    write_ended(async_dir, "j1.3")

    jobs = ["j1.2", {"ansible_job_id": "j1.1"}, "j1.3", {"skipped": True}]

    result = handle_request(dict(params(async_dir, ""), jid=None, jobs=jobs, wait=20))

    assert [entry["ansible_job_id"] for entry in result["jobs"]] == ["j1.2", "j1.1", "j1.3"]
    assert [entry["job"]["state"] for entry in result["jobs"]] == ["failed", "succeeded", "succeeded"]
    assert result["jobs"][0]["result"]["rc"] == 3
    assert result["ignored"] == 1
    assert result["removed"] == []


def test_status_of_many_jobs_returns_at_the_first_end_with_any(async_dir, launcher):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    launcher.launch("import time; time.sleep(0.3); print('{}')", jid="j1.2")

    started = time.monotonic()
    result = handle_request(
        dict(params(async_dir, ""), jid=None, jobs=["j1.1", "j1.2"], wait=20, return_when="any")
    )

    assert time.monotonic() - started < 5
    assert [entry["finished"] for entry in result["jobs"]] == [False, True]


def test_kill_request_kills_and_reports(async_dir, launcher):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    write_ended(async_dir, "j1.2")
    Path(async_dir, "j1.3").write_text(json.dumps({"started": 1, "finished": 0}))

    # Grace enough for SIGTERM alone: with none, whether SIGKILL follows depends on scheduling.
    result = handle_request(
        dict(params(async_dir, "", mode="kill"), jid=None, jobs=["j1.1", "j1.2", "j1.3"], grace=10)
    )

    assert result["changed"] is True
    assert result["killed"] == ["j1.1"]
    assert list(result["refused"]) == ["j1.3"]
    assert [entry["job"]["state"] for entry in result["jobs"]] == ["killed", "succeeded", "running"]
    assert result["jobs"][0]["result"]["msg"] == "job j1.1 was killed on request with SIGTERM"


def test_kill_request_in_check_mode_changes_nothing_on_disk(async_dir, launcher):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")

    result = handle_request(dict(params(async_dir, "j1.1", mode="kill"), _check_mode=True))

    assert result["changed"] is True
    assert result["killed"] == ["j1.1"]
    assert result["jobs"][0]["job"]["state"] == "running"
    assert _store.read_kill_request(async_dir, "j1.1") is None
    assert _proc.pid_alive(launcher.meta("j1.1")["job_pid"])


def test_list_request(async_dir):
    write_ended(async_dir, "j1.1")
    write_running(async_dir, "j1.2")

    result = handle_request(dict(params(async_dir, "", mode="list"), jid=None))

    assert result["changed"] is False
    assert result["async_dir"] == async_dir
    assert [(entry["ansible_job_id"], entry["state"]) for entry in result["jobs"]] == [
        ("j1.1", "succeeded"),
        ("j1.2", "running"),
    ]
    assert set(result["jobs"][0]) == {
        "ansible_job_id",
        "state",
        "reason",
        "age",
        "started_at",
        "ended_at",
        "duration",
        "origin",
        "msg",
    }
    assert "result" not in result["jobs"][0]


def test_list_request_with_filters(async_dir):
    write_ended(async_dir, "j1.1")
    write_ended(async_dir, "j1.2")
    os.utime(os.path.join(async_dir, "j1.1"), (time.time() - 7200, time.time() - 7200))

    result = handle_request(
        dict(params(async_dir, "", mode="list"), jid=None, older_than="1h", states=["succeeded"])
    )

    assert [entry["ansible_job_id"] for entry in result["jobs"]] == ["j1.1"]
    assert result["jobs"][0]["age"] == pytest.approx(7200, abs=5)


def test_cleanup_request_by_filter(async_dir):
    write_ended(async_dir, "j1.1")
    write_running(async_dir, "j1.2")

    result = handle_request(dict(params(async_dir, "", mode="cleanup"), jid=None, older_than=0))

    expected = {
        "changed": True,
        "removed": ["j1.1"],
        "spared": ["j1.2"],
        "killed": [],
        "not_found": [],
        "async_dir": async_dir,
        "ignored": 0,
    }
    assert {key: result[key] for key in expected} == expected
    # The fields of the other modes stay empty.
    assert (result["jobs"], result["refused"], result["failed"]) == ([], {}, False)
    assert os.listdir(async_dir) == ["j1.2"]


def test_cleanup_of_one_job_with_force_kills_it_first(async_dir, launcher):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    job_pid = launcher.meta("j1.1")["job_pid"]

    result = handle_request(dict(params(async_dir, "j1.1", mode="cleanup"), force=True, grace=0))

    assert result["killed"] == ["j1.1"]
    assert result["removed"] == ["j1.1"]
    assert os.listdir(async_dir) == []
    assert not _proc.pid_alive(job_pid)


def test_stock_cleanup_in_check_mode_removes_nothing(async_dir):
    write_ended(async_dir)
    result = handle_request(dict(params(async_dir, "j1.1", mode="cleanup"), _check_mode=True))
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert os.path.exists(os.path.join(async_dir, "j1.1"))


def test_a_relative_async_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("async")
    write_ended(str(tmp_path / "async"))
    result = handle_request(params("async", "j1.1"))
    assert result["jobs"][0]["results_file"] == str(tmp_path / "async" / "j1.1")


def test_kill_request_does_not_report_a_job_that_ended_on_its_own_as_killed(async_dir, job_ending_when_killed):
    job_ending_when_killed("j1.1")

    result = handle_request(dict(params(async_dir, "j1.1", mode="kill"), grace=0, wait=10))

    assert result["jobs"][0]["job"]["state"] == "succeeded"
    assert result["killed"] == []


def write_output(async_dir: str, jid: str, stream: str, data: bytes) -> None:
    fd = _store.open_side_file(async_dir, jid, "." + stream)
    try:
        _store.write_all(fd, data)
    finally:
        os.close(fd)


def test_mode_output_reads_a_running_job_from_offsets(async_dir):
    write_running(async_dir)
    write_output(async_dir, "j1.1", "stdout", b"one\ntwo\n")
    write_output(async_dir, "j1.1", "stderr", b"warn\n")
    result = handle_request({"jid": "j1.1", "mode": "output", "since": {"stdout": 4}, "_async_dir": async_dir})
    (entry,) = result["jobs"]
    assert entry["finished"] is False
    assert entry["output"]["stdout"]["text"] == "two\n"
    assert entry["output"]["stdout"]["next_offset"] == 8
    assert entry["output"]["stderr"]["text"] == "warn\n"
    assert result["removed"] == []


def test_mode_output_never_removes_files(async_dir):
    write_ended(async_dir)
    write_output(async_dir, "j1.1", "stdout", b"kept\n")
    result = handle_request({"jid": "j1.1", "mode": "output", "tail": 1, "_async_dir": async_dir,
                             "_remove_ended": True})
    assert result["jobs"][0]["output"]["stdout"]["text"] == "kept\n"
    assert result["removed"] == []
    assert "j1.1" in os.listdir(async_dir)


def test_mode_output_of_an_ended_job_without_files_reads_its_result(async_dir):
    _store.write_record(
        async_dir, _record.JobRecord(jid="j1.1", state=_record.SUCCEEDED, result={"stdout": "a\nb", "stderr": ""})
    )
    result = handle_request({"jid": "j1.1", "mode": "output", "tail": 1, "_async_dir": async_dir})
    assert result["jobs"][0]["output"]["stdout"]["text"] == "b"
    assert result["jobs"][0]["output"]["stdout"]["source"] == "result"


def test_mode_output_of_a_no_log_job_returns_no_text(async_dir):
    _store.write_record(async_dir, _record.JobRecord(jid="j1.1", state=_record.SUCCEEDED, no_log=True,
                                                     result={"stdout": "SECRET"}))
    write_output(async_dir, "j1.1", "stdout", b"SECRET\n")
    result = handle_request({"jid": "j1.1", "mode": "output", "_async_dir": async_dir})
    assert result["jobs"][0]["output"] == {"hidden": True, "msg": "the output of job j1.1 is hidden by no_log"}


def test_a_followed_window_reads_the_output_before_the_end_removes_the_files(async_dir):
    write_ended(async_dir)
    write_output(async_dir, "j1.1", "stdout", b"last line\n")
    request = _protocol.StatusRequest(
        jids=["j1.1"], single=True, remove_ended=True, async_dir=async_dir, output=True, output_keep_up=True,
        output_since={"j1.1": {"stdout": 5}},
    )
    after_reply: list = []
    reply = _status_request.handle_request(
        _protocol.StatusRequest.from_wire(json.loads(json.dumps(request.to_wire()))), after_reply=after_reply
    )
    assert reply.jobs[0].output["stdout"]["text"] == "line\n"
    assert reply.removed == ["j1.1"]
    assert after_reply == [(async_dir, "j1.1")]


def test_a_status_without_output_carries_none(async_dir):
    write_ended(async_dir)
    write_output(async_dir, "j1.1", "stdout", b"x\n")
    assert handle_request(params(async_dir, "j1.1"))["jobs"][0]["output"] is None


@pytest.mark.parametrize(
    "since, message",
    [
        ({"j1.1": {"stdout": -1}}, "output_since[j1.1][stdout] must be 0 or a positive integer"),
        ({"j1.1": {"stdin": 1}}, "names no stream stdin"),
        ({"../x": {"stdout": 1}}, "is not a job id"),
        ({"j1.1": 3}, "must be an object"),
    ],
)
def test_the_agent_refuses_bad_offsets(since, message):
    wire = _protocol.StatusRequest(jids=["j1.1"], mode="output", async_dir="/x").to_wire()
    wire["params"]["output_since"] = since
    with pytest.raises(_protocol.ProtocolError, match=re.escape(message)):
        _protocol.StatusRequest.from_wire(wire)
