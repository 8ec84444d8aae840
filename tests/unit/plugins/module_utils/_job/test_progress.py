# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress channel: parsing the job's reports and reading the latest from the tail of its file."""

from __future__ import annotations

import os

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import progress as _progress
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

JID = "j1.1"


@pytest.mark.parametrize(
    "line, expected",
    [
        ('{"percent": 40, "msg": "copied 4/10"}', {"percent": 40, "msg": "copied 4/10"}),
        ('{"percent": 12.345}', {"percent": 12.3, "msg": None}),
        ('{"percent": 150, "msg": "x"}', {"percent": 100, "msg": "x"}),
        ('{"percent": -3}', {"percent": 0, "msg": None}),
        ('{"msg": "starting"}', {"percent": None, "msg": "starting"}),
        ('{"current": 3, "total": 12}', {"percent": 25, "msg": None, "current": 3, "total": 12}),
        ('{"percent": 5, "current": 3, "total": 12}', {"percent": 5, "msg": None, "current": 3, "total": 12}),
        ('{"current": 3, "total": 0, "msg": "m"}', {"percent": None, "msg": "m", "current": 3, "total": 0}),
        ('{"percent": 50, "msg": 7}', {"percent": 50, "msg": None}),
        ('{"percent": 50, "other": [1]}', {"percent": 50, "msg": None}),
        ('{"percent": true, "msg": "m"}', {"percent": None, "msg": "m"}),
        ('{"percent": NaN}', None),
        ('{"percent": "40"}', None),
        ('{"other": 1}', None),
        ("[40]", None),
        ("40", None),
        ("not json", None),
        ('{"percent": 4', None),
        (b'{"percent": 1, "msg": "\xff"}', None),
        ('{"msg": "a\\udcffb"}', {"percent": None, "msg": "a?b"}),
    ],
    ids=[
        "both", "float-rounded", "clamped-high", "clamped-low", "msg-only", "current-total", "percent-wins",
        "zero-total", "msg-not-text", "other-keys", "bool-percent", "nan", "text-percent", "nothing-known",
        "array", "number", "not-json", "cut", "not-utf8",
        "lone-surrogate",
    ],
)
def test_parse_line(line, expected):
    assert _progress.parse_line(line) == expected


def test_a_long_message_is_cut():
    report = _progress.parse_line('{"msg": "%s"}' % ("x" * 1000))
    assert report is not None
    assert report["msg"] == "x" * _progress.MAX_MSG_CHARS


@pytest.mark.parametrize(
    "data, starts_mid_line, ended, percent",
    [
        (b'{"percent": 1}\n{"percent": 2}\n', False, False, 2),
        (b'{"percent": 1}\n{"percent": 2}\nnot json\n\n', False, False, 2),
        (b'{"percent": 1}\n{"percent": 2', False, False, 1),
        (b'{"percent": 1}\n{"percent": 2}', False, True, 2),
        (b'{"percent": 1}\n{"percent": 2', False, True, 1),
        (b'{"percent": 1}\n{"percent": 2}\n', True, False, 2),
        (b'1}\n', True, False, None),
        (b'{"percent": 9}\n', True, False, None),
        (b"", False, False, None),
    ],
    ids=[
        "last", "malformed-skipped", "unterminated-waits", "unterminated-at-end", "cut-at-end", "mid-line-start",
        "cut-first-line", "first-line-may-be-cut", "empty",
    ],
)
def test_last_report(data, starts_mid_line, ended, percent):
    report = _progress.last_report(data, starts_mid_line=starts_mid_line, ended=ended)
    assert (report and report["percent"]) == percent


def write_progress(async_dir: str, data: bytes) -> str:
    path = _store.side_path(async_dir, JID, _progress.SUFFIX)
    with open(path, "ab") as handle:
        handle.write(data)
    return path


def test_read_progress_gives_the_last_valid_line_and_when_it_was_written(async_dir):
    path = write_progress(async_dir, b'{"percent": 10, "msg": "a"}\n{"percent": 40, "msg": "copied 4/10"}\n{bad\n')
    os.utime(path, (1700000000.25, 1700000000.25))

    report = _progress.read_progress(async_dir, JID)

    assert report == {"percent": 40, "msg": "copied 4/10", "updated_at": "2023-11-14T22:13:20.250Z"}


def test_read_progress_reads_only_the_tail(async_dir):
    # A valid report beyond the tail is never seen: only garbage (and a line cut in two) is within it.
    write_progress(async_dir, b'{"percent": 10}\n' + b"x" * (_progress.TAIL_BYTES - 10) + b'\n{"percent": 2')
    assert _progress.read_progress(async_dir, JID) is None

    write_progress(async_dir, b'}\n{"percent": 77}\n')
    assert _progress.read_progress(async_dir, JID)["percent"] == 77


@pytest.mark.parametrize("what", ["missing", "empty", "symlink", "hardlink", "directory", "fifo"])
def test_read_progress_without_a_usable_file(async_dir, tmp_path, what):
    path = _store.side_path(async_dir, JID, _progress.SUFFIX)
    if what == "empty":
        write_progress(async_dir, b"")
    elif what == "symlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(b'{"percent": 50}\n')
        os.symlink(target, path)
    elif what == "hardlink":
        target = tmp_path / "elsewhere"
        target.write_bytes(b'{"percent": 50}\n')
        os.link(target, path)
    elif what == "directory":
        os.mkdir(path)
    elif what == "fifo":
        os.mkfifo(path, 0o600)

    assert _progress.read_progress(async_dir, JID) is None


def test_read_progress_refuses_a_bad_jid(async_dir):
    assert _progress.read_progress(async_dir, "../j1.1") is None


def test_the_job_environment_names_the_descriptor_and_the_file(async_dir):
    assert _progress.job_environment(async_dir, JID) == {
        "LONGRUN_PROGRESS_FD": str(_progress.PROGRESS_FD),
        "LONGRUN_PROGRESS_FILE": os.path.join(async_dir, f".{JID}.progress"),
    }
    assert 2 < _progress.PROGRESS_FD < 10


def test_the_progress_file_is_a_side_file_that_cleanup_removes(async_dir):
    write_progress(async_dir, b'{"percent": 1}\n')
    _store.remove_job_files(async_dir, JID)
    assert not os.path.exists(_store.side_path(async_dir, JID, _progress.SUFFIX))


@pytest.mark.parametrize("no_log, msg", [(False, "copied 4/10"), (True, "hidden by no_log")])
def test_the_public_job_carries_the_progress_and_hides_its_message_under_no_log(no_log, msg):
    progress = {"percent": 40, "msg": "copied 4/10", "updated_at": "2026-12-06T10:00:00.000Z"}
    record = _record.JobRecord(jid=JID, state=_record.RUNNING, no_log=no_log or None, progress=progress)

    assert record.public()["progress"] == dict(progress, msg=msg)
    assert record.progress["msg"] == "copied 4/10"


def test_the_ended_record_keeps_the_progress(async_dir):
    record = _record.JobRecord(jid=JID, state=_record.RUNNING, started_at="2026-12-06T10:00:00.000Z")
    record.progress = {"percent": 100, "msg": "done", "updated_at": "2026-12-06T10:00:01.000Z"}
    record.succeed({"changed": False})
    _store.write_record(async_dir, record)

    assert _store.read_record(async_dir, JID).public()["progress"] == record.progress


def test_a_record_without_progress_shows_none():
    assert "progress" not in _record.JobRecord(jid=JID, state=_record.RUNNING).public()


def test_a_running_job_shows_its_latest_report_in_every_status(launcher, async_dir, wait_until, tmp_path):
    go_on = tmp_path / "go-on"
    launcher.launch_shell(
        'echo \'{"percent": 10, "msg": "first"}\' >&"$LONGRUN_PROGRESS_FD"; '
        f'while [ ! -e {go_on} ]; do sleep 0.05; done; '
        'echo \'{"percent": 60, "msg": "second"}\' >&"$LONGRUN_PROGRESS_FD"; echo "{bad" >&7; sleep 60'
    )

    def progress_of_running_job(percent):
        (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=0.2)
        assert record.state == _record.RUNNING
        progress = record.public().get("progress")
        return progress if progress and progress["percent"] == percent else None

    first = wait_until(lambda: progress_of_running_job(10), what="the first report")
    assert first["msg"] == "first"
    go_on.touch()
    # Within one wait: reports do not replace the record, yet the wait's answer has the latest.
    second = wait_until(lambda: progress_of_running_job(60), what="the second report")
    assert second["msg"] == "second"
    assert _status.inspect_job(async_dir, JID).progress["msg"] == "second"

    os.kill(launcher.meta()["pid"], 15)
    record = launcher.wait()
    assert record.state == _record.KILLED
    assert record.public()["progress"]["msg"] == "second"
    assert not os.path.exists(_store.side_path(async_dir, JID, _progress.SUFFIX))


def test_a_no_log_job_shows_its_percent_but_not_its_message(async_dir, janitor):
    spec = _handshake.LaunchSpec(
        jid=JID, async_dir=async_dir, timeout=30, grace=1, interpreter="/bin/sh", style="old", no_log=True,
        payload=b'echo \'{"percent": 40, "msg": "password=hunter2"}\' >&"$LONGRUN_PROGRESS_FD"; echo "{}"\n',
    )
    _handshake.launch(spec)
    janitor.track_job(async_dir, JID)

    (record,) = _status.wait_for_jobs(async_dir, [JID], timeout=20)

    assert record.state == _record.SUCCEEDED, record.msg
    assert record.public()["progress"]["percent"] == 40
    assert record.public()["progress"]["msg"] == "hidden by no_log"
