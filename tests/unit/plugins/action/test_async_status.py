# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import signal
import sys
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as AsyncStatusAction
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import agent_program

ACTION = "longrun.jobs.async_status"


@pytest.fixture
def async_status(make_action):
    def make(args: dict, **task_fields: t.Any):
        return make_action(AsyncStatusAction, ACTION, args, **task_fields)

    return make


class Jobs:
    """Real supervised jobs and records in the connection's async dir."""

    def __init__(self, async_dir: str, janitor) -> None:
        self.async_dir = async_dir
        self.janitor = janitor

    def start(self, jid: str, source: str, *, timeout: int = 30, grace: int = 0) -> dict:
        _store.ensure_async_dir(self.async_dir)
        job = _handshake.launch(
            _handshake.LaunchSpec(
                jid=jid,
                async_dir=self.async_dir,
                timeout=timeout,
                grace=grace,
                interpreter=sys.executable,
                payload=source.encode("utf-8"),
            )
        )
        self.janitor.track_job(self.async_dir, jid)
        return job

    def ended(self, jid: str, state: str = _record.SUCCEEDED, *, age: float = 0, **result: t.Any) -> None:
        _store.ensure_async_dir(self.async_dir)
        record = _record.JobRecord(jid=jid, state=state, result=dict(result), msg=f"job {jid} ended {state}")
        path = _store.write_record(self.async_dir, record)
        if age:
            os.utime(path, (time.time() - age, time.time() - age))

    def stock_running(self, jid: str) -> None:
        _store.ensure_async_dir(self.async_dir)
        Path(self.async_dir, jid).write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": jid}))

    def record(self, jid: str) -> t.Optional[_record.JobRecord]:
        return _store.read_record(self.async_dir, jid)


@pytest.fixture
def jobs(async_dir, janitor) -> Jobs:
    return Jobs(async_dir, janitor)


SLEEP = "import time; time.sleep(60)"


@pytest.mark.parametrize(
    "args, fragment",
    [
        ({"jid": "../x"}, "jid '../x' is not a job id"),
        ({"jid": "j1/../../etc/passwd"}, "is not a job id"),
        ({"jid": ""}, "jid must be a non-empty job id"),
        ({"jid": "j1.2", "wait": -1}, "wait must be 0 or more seconds, got -1"),
        ({"jid": "j1.2", "mode": "restart"}, "value of mode must be one of: status, cleanup, kill, list, output, got: restart"),
        ({}, "mode=status needs jid or jobs"),
        ({"jid": "j1.2", "jobs": ["j1.3"]}, "parameters are mutually exclusive: jid|jobs"),
        ({"jobs": "j1.2"}, "jobs must be a list of job ids or registered results, not string"),
        ({"jobs": ["j1.2", "../x"]}, "jobs[1]: jid '../x' is not a job id"),
        ({"jid": "j1.2", "states": ["failed"]}, "states is only used with mode=list or mode=cleanup"),
        ({"mode": "list", "older_than": "soon"}, "older_than 'soon' is not a duration"),
        ({"mode": "list", "states": ["done"]}, "value of states must be one or more of"),
        ({"mode": "cleanup"}, "mode=cleanup needs jid, jobs or a filter"),
        ({"mode": "kill"}, "mode=kill needs jid or jobs"),
        ({"jid": "j1.2", "mode": "kill", "signal": "STOP"}, "value of signal must be one of"),
        ({"jid": "j1.2", "mode": "kill", "grace": -1}, "grace must be 0 or more seconds, got -1"),
        ({"jobs": ["j1.2"], "return_when": "first"}, "value of return_when must be one of: all, any, got: first"),
    ],
    ids=[
        "dotdot",
        "path",
        "empty",
        "negative-wait",
        "bad-mode",
        "no-jid",
        "jid-and-jobs",
        "jobs-string",
        "bad-item",
        "states-with-status",
        "bad-older-than",
        "bad-state",
        "cleanup-without-selection",
        "kill-without-jobs",
        "bad-signal",
        "negative-grace",
        "bad-return-when",
    ],
)
def test_bad_arguments_fail_without_a_remote_command(async_status, remote_commands, task_vars, args, fragment):
    result = async_status(args).run(task_vars=task_vars)

    assert result["failed"] is True
    assert fragment in result["msg"]
    assert remote_commands.calls == []


def _assert_not_found(result: dict, async_dir: str) -> None:
    assert result["failed"] is True
    assert result["finished"] is True
    assert result["ansible_job_id"] == "j1.2"
    assert result["job"]["state"] == "not_found"
    assert result["msg"].startswith(f"could not find job j1.2 in {async_dir}")
    assert result["stdout"] == ""
    assert result["stdout_lines"] == []


def test_unknown_job_is_not_found_in_one_remote_command(async_status, remote_commands, task_vars, async_dir):
    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    # Pipelining is off, but the local connection can pipeline and there is no become: stdin is used.
    [call] = remote_commands.calls
    program, request = call["in_data"].decode().splitlines()
    assert program == agent_program()
    assert json.loads(request)["params"]["jids"] == ["j1.2"]
    _assert_not_found(result, async_dir)


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_unknown_job_is_not_found_pipelined(async_status, task_vars, async_dir, pipelining):
    _assert_not_found(async_status({"jid": "j1.2"}).run(task_vars=task_vars), async_dir)


@pytest.mark.parametrize("pipelining", [True], ids=["pipelined"], indirect=True)
def test_pipelined_status_is_one_remote_command_with_the_program_on_stdin(
    async_status, remote_commands, task_vars, async_dir, pipelining
):
    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    [call] = remote_commands.calls
    assert isinstance(call["in_data"], bytes)
    assert '"op": "status"' in call["in_data"].decode().splitlines()[1]
    _assert_not_found(result, async_dir)


def test_cleanup_of_an_unknown_job_fails_in_one_remote_command(async_status, remote_commands, task_vars):
    result = async_status({"jid": "j3.4", "mode": "cleanup"}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["job"]["state"] == "not_found"
    assert "erased" not in result


def test_bad_interpreter_fails_with_advice(async_status, remote_commands, task_vars):
    task_vars["ansible_python_interpreter"] = "/nonexistent/python3"

    result = async_status({"jid": "j1.2"}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert result["failed"] is True
    assert "did not answer" in result["msg"]
    assert "/nonexistent/python3" in result["msg"]
    assert "ansible_python_interpreter" in result["msg"]


def test_batch_status_waits_for_every_job_in_one_remote_command(async_status, remote_commands, task_vars, jobs):
    jobs.start("j1.1", 'print(\'{"changed": true, "stdout": "ok", "rc": 0}\')')
    jobs.start("j1.2", 'import sys, time; time.sleep(0.3); print(\'{"failed": true, "rc": 3}\'); sys.exit(1)')
    jobs.ended("j1.3", stdout="earlier")
    loop = {"results": [{"ansible_job_id": "j1.2"}, {"skipped": True, "item": "x"}]}

    result = async_status({"jobs": ["j1.1", loop, "j1.3"], "wait": 20}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert [entry["ansible_job_id"] for entry in result["jobs"]] == ["j1.1", "j1.2", "j1.3"]
    assert [entry["state"] for entry in result["jobs"]] == ["succeeded", "failed", "succeeded"]
    assert [entry["rc"] for entry in result["jobs"]] == [0, 3, None]
    assert result["jobs"][0]["result"]["stdout"] == "ok"
    assert result["summary"]["succeeded"] == 2
    assert result["summary"]["failed"] == 1
    assert result["summary"]["total"] == 3
    assert result["ignored"] == 1
    assert [entry["ansible_job_id"] for entry in result["failed_jobs"]] == ["j1.2"]
    assert result["finished"] is True
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == "3 jobs: 2 succeeded, 1 failed (j1.2: rc=3); 1 item without a job id ignored"
    # Records stay for later calls.
    assert jobs.record("j1.1").state == _record.SUCCEEDED


def test_batch_status_with_any_returns_at_the_first_end(async_status, task_vars, jobs):
    jobs.start("j1.1", SLEEP)
    jobs.start("j1.2", "import time; time.sleep(0.3); print('{}')")

    started = time.monotonic()
    result = async_status({"jobs": ["j1.1", "j1.2"], "wait": 20, "return_when": "any"}).run(task_vars=task_vars)

    assert time.monotonic() - started < 5
    assert [entry["state"] for entry in result["jobs"]] == ["running", "succeeded"]
    assert result["finished"] is False
    assert result["failed"] is False
    assert result["msg"] == "2 jobs: 1 succeeded, 1 running"


def test_nothing_to_do_needs_no_remote_command(async_status, remote_commands, task_vars):
    result = async_status({"jobs": [{"skipped": True}, {"skipped": True}]}).run(task_vars=task_vars)

    assert remote_commands.calls == []
    assert result["jobs"] == []
    assert result["ignored"] == 2
    assert result["failed"] is False
    assert result["changed"] is False
    assert result["msg"] == "0 jobs; 2 items without a job id ignored"


def test_kill_ends_the_jobs_and_reports_them(async_status, task_vars, jobs, tmp_path):
    ready = tmp_path / "ready"
    jobs.start(
        "j1.1",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\ntime.sleep(60)\n",
    )
    jobs.start("j1.2", SLEEP)
    jobs.ended("j1.3")
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    job_pid = jobs.record("j1.1").job_pid

    result = async_status({"jobs": ["j1.1", "j1.2", "j1.3"], "mode": "kill", "grace": 0}).run(task_vars=task_vars)

    assert result.get("failed") is False, result
    assert result["changed"] is True
    assert result["killed"] == ["j1.1", "j1.2"]
    assert [entry["state"] for entry in result["jobs"]] == ["killed", "killed", "succeeded"]
    assert result["jobs"][0]["msg"] == "job j1.1 was killed on request with SIGTERM, then SIGKILL after 0 s grace"
    assert result["msg"] == "killed 2 of 3 jobs; 3 jobs: 1 succeeded, 2 killed (j1.1, j1.2)"
    assert not _proc.pid_alive(job_pid)


def test_kill_of_one_job_carries_its_id_and_job(async_status, task_vars, jobs):
    jobs.start("j1.1", SLEEP)

    result = async_status({"jid": "j1.1", "mode": "kill", "signal": "INT"}).run(task_vars=task_vars)

    assert result["ansible_job_id"] == "j1.1"
    assert result["job"]["state"] == "killed"
    assert result["job"]["signal"] == "SIGINT"


def test_kill_in_check_mode_signals_nothing(async_status, task_vars, jobs):
    jobs.start("j1.1", SLEEP)

    result = async_status({"jid": "j1.1", "mode": "kill"}, check_mode=True).run(task_vars=task_vars)

    assert result["changed"] is True
    assert result["killed"] == ["j1.1"]
    assert result["failed"] is False
    assert result["msg"].startswith("would kill 1 of 1 job; ")
    assert result["job"]["state"] == "running"
    assert _proc.pid_alive(jobs.record("j1.1").job_pid)


def test_kill_fails_for_unknown_and_stock_jobs(async_status, task_vars, jobs):
    jobs.stock_running("j1.1")

    result = async_status({"jobs": ["j1.1", "j9.9"], "mode": "kill", "grace": 0}).run(task_vars=task_vars)

    assert result["failed"] is True
    assert result["changed"] is False
    assert [problem["ansible_job_id"] for problem in result["failed_jobs"]] == ["j1.1", "j9.9"]
    assert "started by stock async" in result["failed_jobs"][0]["msg"]
    assert result["failed_jobs"][1]["msg"].startswith("could not find job j9.9")
    assert "launch jobs with longrun.jobs.run to be able to kill them" in result["msg"]


def test_list_reports_every_record(async_status, remote_commands, task_vars, jobs, async_dir):
    jobs.ended("j1.1", age=7200)
    jobs.ended("j1.2", _record.FAILED, failed=True)
    jobs.start("j1.3", SLEEP)

    result = async_status({"mode": "list"}).run(task_vars=task_vars)

    assert len(remote_commands.calls) == 1
    assert [(entry["ansible_job_id"], entry["state"]) for entry in result["jobs"]] == [
        ("j1.1", "succeeded"),
        ("j1.2", "failed"),
        ("j1.3", "running"),
    ]
    assert result["jobs"][0]["age"] == pytest.approx(7200, abs=5)
    assert result["summary"]["total"] == 3
    assert result["async_dir"] == async_dir
    assert result["changed"] is False
    assert result["msg"] == "3 jobs: 1 succeeded, 1 failed, 1 running"
    assert result.get("failed") is not True


def test_list_with_filters(async_status, task_vars, jobs):
    jobs.ended("j1.1", age=7200)
    jobs.ended("j1.2")
    jobs.ended("j1.3", _record.FAILED, age=7200, failed=True)

    result = async_status({"mode": "list", "older_than": "1h", "states": ["succeeded"]}).run(task_vars=task_vars)

    assert [entry["ansible_job_id"] for entry in result["jobs"]] == ["j1.1"]
    assert result["msg"] == "1 job: 1 succeeded"


def test_list_of_an_empty_async_dir(async_status, task_vars):
    result = async_status({"mode": "list"}).run(task_vars=task_vars)
    assert result["jobs"] == []
    assert result["msg"] == "0 jobs"


def test_cleanup_older_than_spares_recent_and_running_jobs(async_status, task_vars, jobs, async_dir):
    jobs.ended("j1.1", age=2 * 86400)
    jobs.ended("j1.2")
    jobs.start("j1.3", SLEEP)
    os.utime(os.path.join(async_dir, "j1.3"), (time.time() - 3 * 86400, time.time() - 3 * 86400))

    result = async_status({"mode": "cleanup", "older_than": "1d"}).run(task_vars=task_vars)

    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert result["removed"] == ["j1.1"]
    assert result["spared"] == ["j1.3"]
    assert result["msg"] == "removed 1 job record; spared 1 running job"
    assert jobs.record("j1.1") is None
    assert jobs.record("j1.2") is not None
    assert jobs.record("j1.3").state == _record.RUNNING


def test_cleanup_in_check_mode_removes_nothing(async_status, task_vars, jobs, async_dir):
    jobs.ended("j1.1")
    jobs.ended("j1.2")

    result = async_status({"mode": "cleanup", "states": ["succeeded"]}, check_mode=True).run(task_vars=task_vars)

    assert result["changed"] is True
    assert sorted(result["removed"]) == ["j1.1", "j1.2"]
    assert result["msg"] == "would remove 2 job records; spared 0 running jobs"
    assert sorted(os.listdir(async_dir)) == ["j1.1", "j1.2"]


def test_cleanup_with_force_kills_first(async_status, task_vars, jobs, async_dir):
    jobs.start("j1.1", SLEEP)
    job_pid = jobs.record("j1.1").job_pid

    result = async_status({"jobs": ["j1.1"], "mode": "cleanup", "force": True, "grace": 0}).run(task_vars=task_vars)

    assert result["removed"] == ["j1.1"]
    assert result["killed"] == ["j1.1"]
    assert result["msg"] == "removed 1 job record (1 killed first); spared 0 running jobs"
    assert os.listdir(async_dir) == []
    assert not _proc.pid_alive(job_pid)


def test_stock_cleanup_of_a_running_job_keeps_it(async_status, task_vars, jobs):
    jobs.start("j1.1", SLEEP)

    result = async_status({"jid": "j1.1", "mode": "cleanup"}).run(task_vars=task_vars)

    assert result["failed"] is True
    assert result["changed"] is False
    assert "still running, so its record was kept" in result["msg"]
    assert "force: true" in result["msg"]
    assert "erased" not in result
    assert jobs.record("j1.1").state == _record.RUNNING


def test_stock_cleanup_in_check_mode_keeps_the_record(async_status, task_vars, jobs):
    jobs.ended("j1.1")

    result = async_status({"jid": "j1.1", "mode": "cleanup"}, check_mode=True).run(task_vars=task_vars)

    assert result["changed"] is True
    # Nothing was erased, so nothing is reported as erased.
    assert "erased" not in result
    assert result["msg"].startswith("check mode: the record of job j1.1 would be removed: ")
    assert result["msg"].endswith("/j1.1")
    assert jobs.record("j1.1") is not None


def test_status_of_a_lost_job_fails_with_the_reason(async_status, task_vars, jobs):
    jobs.start("j1.1", SLEEP)
    record = jobs.record("j1.1")
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _proc.pid_alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    result = async_status({"jid": "j1.1"}).run(task_vars=task_vars)

    assert result["failed"] is True
    assert result["finished"] is True
    assert result["job"]["state"] == "lost"
    assert result["msg"] == f"job j1.1 was lost: its supervisor (pid {record.pid}) died without recording an end"


def test_kill_waits_no_longer_than_asked(async_status, task_vars, jobs, tmp_path):
    ready = tmp_path / "ready"
    jobs.start(
        "j1.1",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').close()\ntime.sleep(60)\n",
    )
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    started = time.monotonic()
    result = async_status({"jid": "j1.1", "mode": "kill", "grace": 2, "wait": 0.5}).run(task_vars=task_vars)

    assert time.monotonic() - started < 1.5
    assert result["job"]["state"] == "running"
    assert result["failed"] is True
    assert result["failed_jobs"] == [
        {"ansible_job_id": "j1.1", "state": "running", "msg": "job j1.1 was signalled but had not ended after 0.5 s"}
    ]


def test_output_is_judged_as_core_judges_it(async_status, task_vars, jobs):
    swallowed = '{"changed": true}\n{"failed": true, "msg": "swallowed"}\n'
    jobs.start("j7.1", f"print({swallowed!r}, end='')")
    jobs.start("j7.2", 'print(\'{"changed": true}\'); print("trailing text")')
    jobs.start("j7.3", 'import sys; sys.stderr.write("a note\\n"); print(\'{"changed": true, "stderr": "own"}\')')

    results = {jid: async_status({"jid": jid, "wait": 20}).run(task_vars=task_vars) for jid in ("j7.1", "j7.2", "j7.3")}

    with pytest.raises(ValueError) as core_error:
        json.loads(swallowed)
    more_json = results["j7.1"]
    assert more_json["failed"] is True
    assert more_json["job"]["reason"] == "module_crashed"
    assert str(core_error.value) in more_json["msg"]
    assert more_json["data"] == more_json["module_stdout"] == swallowed
    junk = results["j7.2"]
    assert junk["failed"] is False
    assert junk["warnings"] == ["Module invocation had junk after the JSON data: trailing text"]
    assert results["j7.3"]["stderr"] == "a note\n"
