# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ast
import datetime
import pathlib
import re
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences

RESULTS_FILE = "/tmp/async/j1.1"


def running_record() -> _record.JobRecord:
    return _record.JobRecord(
        jid="j1.1",
        state=_record.RUNNING,
        pid=4242,
        pid_start_time=123456,
        boot_id="c751510e-0000-0000-0000-000000000000",
        started_at="2024-05-01T10:00:00.000Z",
        deadline="2024-05-01T10:01:00.000Z",
        timeout=60,
        grace=5,
        job_pid=4243,
    )


def ended_record() -> _record.JobRecord:
    record = running_record()
    record.state = _record.FAILED
    record.reason = _record.REASON_MODULE_FAILED
    record.msg = "job j1.1 failed: boom (rc=3)"
    record.exit_code = 1
    record.ended_at = "2024-05-01T10:00:12.345Z"
    record.result = {"failed": True, "msg": "boom", "rc": 3, "changed": False}
    return record


@pytest.mark.parametrize("jid", ["j123.456", "123456", "j1", "123456.789", "j20240501123456.4242"])
def test_validate_jid_accepts_job_ids(jid):
    assert _record.validate_jid(jid) == jid
    assert _record.is_jid(jid)


@pytest.mark.parametrize(
    "jid",
    [
        "",
        None,
        123,
        "../x",
        "/etc/passwd",
        "j1/2",
        "j1..2",
        "j1.2.3",
        " j1",
        "j1 ",
        "j1\n",
        "j",
        ".j1",
        "j1.",
        "x1",
        "J1",
    ],
)
def test_validate_jid_refuses_anything_else(jid):
    with pytest.raises(_record.InvalidJid, match="job id"):
        _record.validate_jid(jid)


def test_invalid_jid_is_a_value_error():
    assert issubclass(_record.InvalidJid, ValueError)


def test_running_document_is_stock_running_and_carries_no_result():
    document = running_record().to_document(RESULTS_FILE)
    assert document["started"] is True
    assert document["finished"] is False
    assert document["ansible_job_id"] == "j1.1"
    assert document["results_file"] == RESULTS_FILE
    assert set(document) == {"started", "finished", "ansible_job_id", "results_file", _record.META_KEY}
    assert document[_record.META_KEY]["schema"] == _record.SCHEMA_VERSION
    assert document[_record.META_KEY]["state"] == _record.RUNNING


def test_ended_document_has_the_result_at_top_level_and_no_started_key():
    document = ended_record().to_document(RESULTS_FILE)
    # Stock async_status treats a document without 'started' as finished.
    assert "started" not in document
    assert document["finished"] is True
    assert document["ansible_job_id"] == "j1.1"
    assert document["failed"] is True
    assert document["msg"] == "boom"
    assert document["rc"] == 3
    assert document[_record.META_KEY]["state"] == _record.FAILED
    assert "result" not in document[_record.META_KEY]
    assert "origin" not in document[_record.META_KEY]


@pytest.mark.parametrize("make_record", [running_record, ended_record], ids=["running", "ended"])
def test_document_round_trip(make_record):
    record = make_record()
    assert _record.record_from_document(record.jid, record.to_document(RESULTS_FILE)) == record


def test_a_no_log_job_says_so_in_its_record_and_its_public_dict():
    record = running_record()
    assert "no_log" not in record.public()
    record.no_log = True
    back = _record.record_from_document(record.jid, record.to_document(RESULTS_FILE))
    assert back.no_log is True
    assert back.public()["no_log"] is True


def test_a_no_log_flag_that_is_not_a_boolean_is_refused():
    document = running_record().to_document(RESULTS_FILE)
    document[_record.META_KEY]["no_log"] = 1
    with pytest.raises(ValueError, match="no_log"):
        _record.record_from_document("j1.1", document)


def test_round_trip_strips_envelope_keys_from_the_result():
    record = ended_record()
    back = _record.record_from_document("j1.1", record.to_document(RESULTS_FILE))
    assert back.result == {"failed": True, "msg": "boom", "rc": 3, "changed": False}
    assert back.origin == "longrun"


def test_stock_running_document():
    record = _record.record_from_document("123.45", {"started": 1, "finished": 0, "ansible_job_id": "123.45"})
    assert record.state == _record.RUNNING
    assert record.origin == "stock"
    assert not record.finished
    assert record.result is None


def test_stock_success_document():
    record = _record.record_from_document(
        "123.45", {"changed": True, "rc": 0, "ansible_job_id": "123.45", "finished": 1}
    )
    assert record.state == _record.SUCCEEDED
    assert record.origin == "stock"
    assert record.result == {"changed": True, "rc": 0}
    assert not record.failed


def test_stock_timeout_document():
    record = _record.record_from_document("123.45", {"msg": "Timeout exceeded", "failed": True, "child_pid": 1})
    assert record.state == _record.TIMED_OUT
    assert record.reason == _record.REASON_ASYNC_LIMIT
    assert record.origin == "stock"
    assert "timed out" in record.msg


def test_stock_crash_document():
    record = _record.record_from_document("123.45", {"failed": 1, "msg": "x", "data": "Traceback ..."})
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert "crashed" in record.msg
    assert record.result["data"] == "Traceback ..."


def test_stock_module_failure_document_names_the_rc():
    record = _record.record_from_document("123.45", {"rc": 3, "failed": True, "msg": "non-zero return code"})
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_FAILED
    assert "rc=3" in record.msg
    assert record.msg == "job 123.45 failed: non-zero return code (rc=3)"


def test_failure_sentence_does_not_repeat_the_rc():
    assert _sentences.failure_sentence("j1", {"msg": "exited with rc=3.", "rc": 3}) == "job j1 failed: exited with rc=3"
    assert _sentences.failure_sentence("j1", {}) == "job j1 failed: the module reported failure"


@pytest.mark.parametrize(
    "meta",
    [
        "not a dict",
        [],
        {},
        {"state": "sleeping", "schema": 1},
        {"state": "running"},
        {"state": "running", "schema": 99},
    ],
)
def test_malformed_longrun_section_raises_value_error(meta):
    with pytest.raises(ValueError):
        _record.record_from_document("j1", {"started": True, _record.META_KEY: meta})


@pytest.mark.parametrize("document", [None, [], "text", 3])
def test_non_object_document_raises_value_error(document):
    with pytest.raises(ValueError, match="not a JSON object"):
        _record.record_from_document("j1", document)


@pytest.mark.parametrize("pid", ["abc", 1.5])
def test_wrongly_typed_longrun_pid_raises_value_error(pid):
    with pytest.raises(ValueError):
        _record.record_from_document(
            "j1", {"started": True, _record.META_KEY: {"state": "running", "schema": 1, "pid": pid}}
        )


def test_time_format_round_trip():
    moment = datetime.datetime(2024, 5, 1, 10, 0, 12, 345000, tzinfo=datetime.timezone.utc)
    text = _record.format_time(moment)
    assert text == "2024-05-01T10:00:12.345Z"
    assert _record.parse_time(text) == moment
    assert _record.format_time(None) is None
    assert _record.parse_time("yesterday") is None
    assert _record.parse_time(None) is None


def test_duration_of_an_ended_record():
    assert ended_record().duration() == 12.345


def test_duration_of_a_running_record_uses_now():
    now = datetime.datetime(2024, 5, 1, 10, 0, 30, 500000, tzinfo=datetime.timezone.utc)
    assert running_record().duration(now=now) == 30.5


def test_duration_is_never_negative_and_none_without_times():
    record = ended_record()
    record.ended_at = "2024-05-01T09:00:00.000Z"
    assert record.duration() == 0.0
    record.started_at = None
    assert record.duration() is None
    lost = running_record()
    lost.state = _record.LOST
    assert lost.duration() is None


def test_public_hides_reason_of_running_and_succeeded_jobs():
    running = running_record().public(now=datetime.datetime(2024, 5, 1, 10, 0, 1, tzinfo=datetime.timezone.utc))
    assert running == {
        "state": "running",
        "pid": 4242,
        "started_at": "2024-05-01T10:00:00.000Z",
        "ended_at": None,
        "duration": 1.0,
        "origin": "longrun",
        "timeout": 60,
    }
    failed = ended_record().public()
    assert failed["reason"] == _record.REASON_MODULE_FAILED
    assert failed["msg"] == "job j1.1 failed: boom (rc=3)"
    assert failed["exit_code"] == 1


@pytest.mark.parametrize("state", _record.STATES)
def test_finished_and_failed_flags(state):
    record = _record.JobRecord(jid="j1", state=state)
    assert record.finished is (state not in (_record.RUNNING, _record.WAITING))
    assert record.failed is (state not in (_record.RUNNING, _record.WAITING, _record.SUCCEEDED))


# The transitions: the only code that ends a job or infers its end.

NOW_PATTERN = r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z"


def assert_ended_now(record: _record.JobRecord) -> None:
    assert record.ended_at is not None and re.match(NOW_PATTERN, record.ended_at)
    ended = _record.parse_time(record.ended_at)
    assert ended is not None
    assert abs((_record.utc_now() - ended).total_seconds()) < 60


def test_succeed():
    record = running_record()
    record.succeed({"warnings": ["w"]}, exit_code=0)
    assert (record.state, record.reason, record.msg) == (_record.SUCCEEDED, None, None)
    assert record.result == {"warnings": ["w"]}
    assert (record.signal, record.exit_code) == (None, 0)
    assert_ended_now(record)


def test_fail_module_words_the_failure_from_the_summary_and_keeps_the_result():
    record = running_record()
    record.fail_module({"failed": True, "msg": "boom.", "rc": 3}, {"stderr": "trace"}, exit_code=1)
    assert (record.state, record.reason) == (_record.FAILED, _record.REASON_MODULE_FAILED)
    assert record.msg == "job j1.1 failed: boom (rc=3)"
    assert record.result == {"stderr": "trace"}
    assert (record.signal, record.exit_code) == (None, 1)
    assert_ended_now(record)


def test_crash_builds_stock_wrapper_result_with_the_stderr_tail():
    record = running_record()
    captured = {"cmd": "python3", "data": "out", "stderr": "err\nValueError: x\n", "module_stdout": "out", "module_stderr": "err"}
    record.crash("the module exited with code 2 without returning JSON (x)", exit_code=2, captured=captured, last_error="ValueError: x")
    assert (record.state, record.reason) == (_record.FAILED, _record.REASON_MODULE_CRASHED)
    assert record.msg == "job j1.1 crashed: the module exited with code 2 without returning JSON (x)"
    assert record.result == dict(
        {"failed": True, "msg": record.msg + "; its stderr ends with: ValueError: x"}, **captured, rc=2
    )
    assert list(record.result) == ["failed", "msg", "cmd", "data", "stderr", "module_stdout", "module_stderr", "rc"]
    assert (record.signal, record.exit_code) == (None, 2)
    assert_ended_now(record)


def test_crash_by_a_signal_has_rc_minus_one():
    record = running_record()
    record.crash("the module process was killed by SIGKILL", signal="SIGKILL")
    assert record.msg == "job j1.1 crashed: the module process was killed by SIGKILL"
    assert record.result == {"failed": True, "msg": record.msg, "rc": -1}
    assert (record.signal, record.exit_code) == ("SIGKILL", None)


def test_time_out():
    record = running_record()
    record.time_out("SIGTERM", "SIGKILL", 5)
    assert (record.state, record.reason) == (_record.TIMED_OUT, _record.REASON_ASYNC_LIMIT)
    assert record.msg == "job j1.1 timed out after 60 s (async limit) and was terminated with SIGTERM, then SIGKILL after 5 s grace"
    assert record.result == {"failed": True, "msg": record.msg, "changed": True}
    assert (record.signal, record.exit_code) == ("SIGTERM", None)
    assert_ended_now(record)


def test_time_out_that_the_first_signal_ended():
    record = running_record()
    record.time_out("SIGTERM", "SIGTERM", 5)
    assert record.msg == "job j1.1 timed out after 60 s (async limit) and was terminated with SIGTERM"


@pytest.mark.parametrize(
    "last, orphan, expected",
    [
        ("SIGINT", False, "job j1.1 was killed on request with SIGINT"),
        ("SIGKILL", False, "job j1.1 was killed on request with SIGINT, then SIGKILL after 2 s grace"),
        (
            "SIGKILL",
            True,
            "job j1.1 was killed on request with SIGINT, then SIGKILL after 2 s grace; "
            "its supervisor had died, so the job's own process group was signalled",
        ),
    ],
    ids=["first-signal", "escalated", "orphan"],
)
def test_kill(last, orphan, expected):
    record = running_record()
    record.kill("SIGINT", last, 2, orphan=orphan)
    assert (record.state, record.reason) == (_record.KILLED, _record.REASON_KILL_REQUESTED)
    assert record.msg == expected
    assert record.result == {"failed": True, "msg": expected, "changed": True}
    assert (record.signal, record.exit_code) == ("SIGINT", None)
    assert_ended_now(record)


@pytest.mark.parametrize(
    "reason, problem, expected",
    [
        (_record.REASON_HOST_REBOOTED, None, "job j1.1 was lost: the host rebooted after it started (boot id changed)"),
        (_record.REASON_SUPERVISOR_GONE, None, "job j1.1 was lost: its supervisor (pid 4242) died without recording an end"),
        (
            _record.REASON_SUPERVISOR_GONE,
            "is full (free space there)",
            "job j1.1 was lost: its supervisor (pid 4242) died without recording an end; "
            "it likely could not, because the file system of /tmp/async is full (free space there)",
        ),
    ],
    ids=["rebooted", "supervisor-gone", "file-system-full"],
)
def test_lose(reason, problem, expected):
    record = running_record()
    record.lose(reason, file_system_problem=problem, async_dir="/tmp/async")
    assert (record.state, record.reason) == (_record.LOST, reason)
    assert record.msg == expected
    assert record.result == {"failed": True, "msg": expected}
    # When a lost job ended is unknown.
    assert record.ended_at is None
    assert (record.signal, record.exit_code) == (None, None)


def test_fail_to_save_turns_a_success_into_a_failure():
    record = running_record()
    record.succeed({}, exit_code=0)
    ended_at = record.ended_at
    record.fail_to_save("the disk is full")
    assert (record.state, record.reason) == (_record.FAILED, _record.REASON_RESULT_NOT_SAVED)
    assert record.msg == "job j1.1 succeeded, but its result could not be saved: the disk is full"
    assert record.result == {"failed": True, "msg": record.msg, "rc": 0}
    assert record.ended_at == ended_at


def test_fail_to_save_keeps_any_other_end_and_says_so():
    record = running_record()
    record.time_out("SIGTERM", "SIGTERM", 5)
    record.fail_to_save("the disk is full")
    assert (record.state, record.reason) == (_record.TIMED_OUT, _record.REASON_ASYNC_LIMIT)
    assert record.msg == (
        "job j1.1 timed out after 60 s (async limit) and was terminated with SIGTERM; "
        "its result could not be saved: the disk is full"
    )
    assert record.result == {"failed": True, "msg": record.msg}


@pytest.mark.parametrize("failed", [False, True], ids=["succeeded", "failed"])
def test_note_recovered_end(failed):
    record = running_record()
    if failed:
        record.fail_module({"msg": "boom"}, {"warnings": ["own"]}, exit_code=0)
    else:
        record.succeed({"warnings": ["own"]}, exit_code=0)
    record.note_recovered_end()
    note = (
        "the supervisor of job j1.1 (pid 4242) died after the module ended; "
        "the result was recovered from the module's output, and its exit code is unknown"
    )
    assert record.msg == (f"job j1.1 failed: boom; {note}" if failed else note)
    assert record.result == {"warnings": ["own", note]}
    assert record.exit_code is None


def test_not_found():
    record = _record.JobRecord.not_found("j1.1", "/tmp/async")
    assert (record.jid, record.state, record.reason) == ("j1.1", _record.NOT_FOUND, _record.REASON_NO_RECORD)
    assert record.msg == (
        "could not find job j1.1 in /tmp/async: it never started there, was cleaned up, "
        "or ran as another user (use the same become settings as the launch)"
    )
    assert (record.result, record.ended_at) == (None, None)


def test_unreadable():
    record = _record.JobRecord.unreadable("j1.1", ValueError("the record is not a JSON object"))
    assert (record.state, record.reason) == (_record.UNREADABLE, _record.REASON_BAD_RECORD)
    assert record.msg == "job j1.1 is unreadable: the record is not a JSON object"
    assert (record.result, record.ended_at) == (None, None)


@pytest.mark.parametrize(
    "document",
    [
        {"changed": True},
        {"msg": "Timeout exceeded", "failed": True},
        {"failed": 1, "msg": "", "data": ""},
        {"failed": True, "msg": "boom"},
    ],
    ids=["success", "timeout", "crash", "failure"],
)
def test_stock_ends_keep_stock_result_and_no_end_time(document):
    record = _record.record_from_document("123.45", dict(document, finished=1, ansible_job_id="123.45"))
    assert record.result == document
    assert record.ended_at is None
    assert (record.signal, record.exit_code) == (None, None)


def test_stock_crash_without_a_message_says_no_json():
    record = _record.record_from_document("123.45", {"failed": 1, "msg": "", "data": ""})
    assert record.msg == "job 123.45 crashed: the module did not return JSON"


PLUGINS_DIR = pathlib.Path(_record.__file__).resolve().parents[2]
RECORD_FILE = pathlib.Path(_record.__file__).resolve()


def _end_assignments(path: pathlib.Path) -> t.List[str]:
    """Where the code of path assigns .state or .reason of anything (a record, in practice)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in ("state", "reason")
            ):
                found.append(f"{path}:{node.lineno}")
            continue
        while targets:
            target = targets.pop()
            if isinstance(target, (ast.Tuple, ast.List)):
                targets.extend(target.elts)
            elif isinstance(target, ast.Starred):
                targets.append(target.value)
            elif isinstance(target, ast.Attribute) and target.attr in ("state", "reason"):
                found.append(f"{path}:{node.lineno}")
    return found


def test_only_the_record_transitions_end_a_job():
    """No code outside record.py sets a record's state or reason: every end goes through a transition."""
    modules = sorted(PLUGINS_DIR.rglob("*.py"))
    assert RECORD_FILE in modules and len(modules) > 20
    offenders = [place for path in modules if path != RECORD_FILE for place in _end_assignments(path)]
    assert offenders == []


@pytest.mark.parametrize("name", ["backup-db", "nightly_2026.01", "db@host", "a", "_x", "a+b=c", "x" * 100])
def test_job_names_that_are_valid(name):
    assert _record.validate_name(name) == name
    assert _record.validate_job_ref(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../x", "a/b", ".hidden", "-x", "x" * 101, "j123.45", "123", "j1.2.3", "2026.01", "a b", "~root", None, 5],
)
def test_job_names_that_are_refused(name):
    with pytest.raises(_record.InvalidName, match="is not valid"):
        _record.validate_name(name)


@pytest.mark.parametrize("ref, problem", [
    ("../x", "jid '../x' is not a job id (such as 'j123456789.4242') nor a job name"),
    ("j1.2.3", "jid 'j1.2.3' is not a job id"),
    ("", "jid must be a non-empty job id"),
    (None, "jid must be a non-empty job id"),
])
def test_job_refs_that_are_refused_name_both_forms(ref, problem):
    with pytest.raises(_record.InvalidJid) as caught:
        _record.validate_job_ref(ref)
    assert problem in str(caught.value)


def test_a_jid_is_a_job_ref():
    assert _record.validate_job_ref("j123.45") == "j123.45"


def test_a_waiting_record_is_active_and_shows_what_it_waits_for():
    record = _record.JobRecord(jid="j2.2", state=_record.RUNNING, locks=["db"], deadline="2026-01-01T00:00:00.000Z")
    record.wait_for_locks({"lock": "db", "holder": "j1.1", "holder_pid": 42})
    assert record.state == _record.WAITING and record.deadline is None
    assert not record.finished and not record.failed
    public = record.public()
    assert public["waiting_for"] == {"lock": "db", "holder": "j1.1", "holder_pid": 42}
    assert public["locks"] == ["db"]
    document = record.to_document("/async/j2.2")
    assert document["started"] is True and document["finished"] is False
    assert _record.record_from_document("j2.2", document) == record
    record.start_after_locks("2026-01-01T00:00:05.000Z", "2026-01-01T00:01:05.000Z")
    assert record.state == _record.RUNNING and record.waiting_for is None
    assert "waiting_for" not in record.public()
    record.time_out_waiting("the lock 'db'", 5)
    assert (record.state, record.reason) == (_record.FAILED, _record.REASON_LOCK_TIMEOUT)
    assert record.result == {"failed": True, "msg": record.msg, "changed": False}
