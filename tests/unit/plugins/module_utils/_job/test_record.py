# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import datetime

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
    assert record.finished is (state != _record.RUNNING)
    assert record.failed is (state not in (_record.RUNNING, _record.SUCCEEDED))
