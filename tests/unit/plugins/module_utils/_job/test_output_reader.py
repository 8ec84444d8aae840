# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import output_reader as _reader
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store


def write_side(async_dir: str, jid: str, stream: str, data: bytes) -> str:
    fd = _store.open_side_file(async_dir, jid, "." + stream)
    try:
        _store.write_all(fd, data)
    finally:
        os.close(fd)
    return _store.side_path(async_dir, jid, "." + stream)


def running(jid: str = "j1.1", **fields) -> _record.JobRecord:
    return _record.JobRecord(jid=jid, state=_record.RUNNING, **fields)


def ended(jid: str = "j1.1", **fields) -> _record.JobRecord:
    return _record.JobRecord(jid=jid, state=_record.SUCCEEDED, **fields)


def test_read_from_an_offset_reports_where_to_go_on():
    read = _reader.read_bytes(b"one\ntwo\nthree\n", since=4, ended=False)
    assert read.text == "two\nthree\n"
    assert (read.offset, read.next_offset, read.size) == (4, 14, 14)
    assert read.truncated is False
    assert read.complete is False


def test_a_read_stops_at_the_cap_and_the_offsets_continue():
    data = b"".join(b"line %05d\n" % number for number in range(1000))
    pieces, offset = [], 0
    while True:
        read = _reader.read_bytes(data, since=offset, max_bytes=4096, ended=True)
        assert len(read.text.encode()) <= 4096
        pieces.append(read.text)
        offset = read.next_offset
        if read.complete:
            break
        assert read.truncated is True
    assert "".join(pieces).encode() == data
    assert len(pieces) == -(-len(data) // 4096)


def test_a_cap_never_cuts_a_utf8_character():
    data = "é".encode() * 10 + "€".encode() * 10
    pieces, offset = [], 0
    for _attempt in range(100):
        read = _reader.read_bytes(data, since=offset, max_bytes=5, ended=True)
        assert "\ufffd" not in read.text
        pieces.append(read.text)
        offset = read.next_offset
        if read.complete:
            break
    assert "".join(pieces) == "é" * 10 + "€" * 10


def test_a_character_still_being_written_waits_for_the_next_read():
    read = _reader.read_bytes("ab€".encode()[:4], ended=False)
    assert read.text == "ab"
    assert read.next_offset == 2
    # Once the job has ended nothing more comes: what is there is shown.
    assert _reader.read_bytes("ab€".encode()[:4], ended=True).text == "ab\ufffd"


def test_an_offset_inside_a_character_skips_its_remaining_bytes():
    read = _reader.read_bytes("€x".encode(), since=1, ended=True)
    assert read.text == "x"
    assert read.skipped == 2


def test_an_offset_past_the_end_finds_nothing_new():
    read = _reader.read_bytes(b"abc", since=99, ended=True)
    assert (read.text, read.next_offset, read.complete) == ("", 3, True)


@pytest.mark.parametrize(
    "data, lines, expected",
    [
        (b"a\nb\nc\n", 2, "b\nc\n"),
        (b"a\nb\nc", 2, "b\nc"),
        (b"a\nb\nc\n", 10, "a\nb\nc\n"),
        (b"a\nb\nc\n", 0, ""),
        (b"", 3, ""),
    ],
)
def test_tail_returns_the_last_lines(data, lines, expected):
    read = _reader.read_bytes(data, tail=lines, ended=True)
    assert read.text == expected
    assert read.next_offset == len(data)
    assert read.skipped == len(data) - len(expected.encode())


def test_tail_of_long_lines_is_bounded_by_the_cap():
    data = b"x" * 10000 + b"\n" + b"y" * 10000 + b"\n"
    read = _reader.read_bytes(data, tail=2, max_bytes=1000)
    assert read.text == "y" * 999 + "\n"
    assert read.skipped == len(data) - 1000
    assert read.next_offset == len(data)


def test_keeping_up_skips_to_the_latest_lines_and_says_how_much():
    data = b"".join(b"line %05d\n" % number for number in range(1000))
    read = _reader.read_bytes(data, since=0, max_bytes=100, ended=False, keep_up=True)
    assert read.text.endswith("line 00999\n")
    assert read.text.startswith("line ")
    assert len(read.text) <= 100
    assert read.skipped == len(data) - len(read.text)
    assert read.next_offset == len(data)


def test_keeping_up_holds_back_a_line_being_written():
    read = _reader.read_bytes(b"done\nhalf a li", ended=False, keep_up=True)
    assert read.text == "done\n"
    assert read.next_offset == 5
    assert _reader.read_bytes(b"half a li", ended=False, keep_up=True).text == ""
    # ...unless it alone fills a read, or the job has ended.
    assert _reader.read_bytes(b"z" * 50, max_bytes=10, ended=False, keep_up=True).text == "z" * 10
    assert _reader.read_bytes(b"done\nhalf a li", ended=True, keep_up=True).text == "done\nhalf a li"


def test_job_output_of_a_running_job_reads_its_side_files(async_dir):
    write_side(async_dir, "j1.1", "stdout", b"out 1\nout 2\n")
    write_side(async_dir, "j1.1", "stderr", b"err 1\n")
    output = _reader.read_job_output(async_dir, running(), since={"stdout": 6})
    assert output["stdout"]["text"] == "out 2\n"
    assert output["stdout"]["next_offset"] == 12
    assert output["stderr"]["text"] == "err 1\n"
    assert output["stdout"]["complete"] is output["stderr"]["complete"] is False
    assert output["stdout"]["source"] == "file"


def test_job_output_of_an_ended_job_without_files_comes_from_its_result(async_dir):
    record = ended(result={"stdout": "a\nb\nc", "stderr": "", "rc": 0})
    output = _reader.read_job_output(async_dir, record, tail=2)
    assert output["stdout"]["text"] == "b\nc"
    assert output["stdout"]["source"] == "result"
    assert output["stdout"]["complete"] is True
    assert output["stderr"]["text"] == ""
    # Following reads the files only: the result reaches the task in full anyway.
    followed = _reader.read_job_output(async_dir, record, keep_up=True, fallback=False)
    assert followed["stdout"]["text"] == ""
    assert followed["stdout"]["source"] == "none"


def test_job_output_of_an_ended_job_prefers_its_kept_files(async_dir):
    write_side(async_dir, "j1.1", "stdout", b"from the file\n")
    output = _reader.read_job_output(async_dir, ended(result={"stdout": "from the result"}))
    assert output["stdout"]["text"] == "from the file\n"
    assert output["stdout"]["complete"] is True


def test_job_output_of_a_no_log_job_is_hidden(async_dir):
    write_side(async_dir, "j1.1", "stdout", b"SECRET\n")
    output = _reader.read_job_output(async_dir, running(no_log=True))
    assert output == {"hidden": True, "msg": "the output of job j1.1 is hidden by no_log"}
    assert "SECRET" not in repr(output)


def test_a_symlinked_side_file_is_not_followed(async_dir, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("SECRET\n")
    os.symlink(secret, _store.side_path(async_dir, "j1.1", ".stdout"))
    output = _reader.read_job_output(async_dir, running())
    assert output["stdout"]["text"] == ""
    assert output["stdout"]["source"] == "none"


def test_the_cap_has_a_hard_limit(async_dir):
    write_side(async_dir, "j1.1", "stdout", b"x" * (_reader.MAX_BYTES_LIMIT + 10))
    output = _reader.read_job_output(async_dir, running(), max_bytes=10 * _reader.MAX_BYTES_LIMIT)
    assert len(output["stdout"]["text"]) == _reader.MAX_BYTES_LIMIT
    assert output["stdout"]["truncated"] is True


@pytest.mark.parametrize(
    "how", [{"since": 0}, {"since": 25_000_000}, {"tail": 10}, {"since": 0, "keep_up": True}], ids=str
)
def test_reading_50_mb_of_output_holds_only_the_cap_in_memory(async_dir, how):
    import tracemalloc  # pylint: disable=import-outside-toplevel

    path = _store.side_path(async_dir, "j1.1", ".stdout")
    with open(path, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    tracemalloc.start()
    try:
        output = _reader.read_job_output(async_dir, running(), since={"stdout": how.get("since", 0)},
                                         tail=how.get("tail"), keep_up=how.get("keep_up", False))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(output["stdout"]["text"]) <= _reader.DEFAULT_MAX_BYTES
    assert output["stdout"]["size"] == 50 * 1024 * 1024
    # The cap's bytes, their text and a little more: nowhere near the 50 MB of the stream.
    assert peak < 8 * _reader.DEFAULT_MAX_BYTES, peak
