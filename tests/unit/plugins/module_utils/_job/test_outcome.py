# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A job's end: what the module's exit and output mean, the end record, and its recovery after the supervisor died."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import outcome as _outcome
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

JID = "j1.1"


def read_raw(async_dir: str, jid: str = JID) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)


def test_tail_text_caps_at_the_end():
    assert _outcome.tail_text(b"abc") == "abc"
    data = b"a" * 10 + b"b" * _outcome.TAIL_BYTES
    assert _outcome.tail_text(data) == "b" * _outcome.TAIL_BYTES
    assert _outcome.tail_text(b"0123456789", limit=4) == "6789"
    # A multi-byte character cut in half does not break decoding.
    assert _outcome.tail_text("é".encode() * 3, limit=5).endswith("éé")


def test_normalize_result_turns_warnings_into_strings():
    result = {
        "warnings": [
            {"msg": "first"}, "second", {"message": "third"}, {"details": [{"msg": "fourth"}]},
            # How ansible-core 2.19 and later modules write a warning.
            {"event": {"msg": "fifth", "__ansible_type": "Event"}, "__ansible_type": "WarningSummary"},
        ],
        "deprecations": {"msg": "old", "version": "2.0"},
        "x": 1,
    }
    assert _outcome.normalize_result(result) == {
        "warnings": ["first", "second", "third", "fourth", "fifth"],
        "deprecations": ["old"],
        "x": 1,
    }


def test_succeeding_module(launcher, async_dir, wait_until):
    launcher.launch('print("noise before the result")\nprint(\'{"changed": false, "x": 1}\')')
    record = launcher.wait()
    assert record.state == _record.SUCCEEDED
    assert record.result == {"changed": False, "x": 1}
    assert record.exit_code == 0
    document = read_raw(async_dir)
    assert "started" not in document
    assert document["x"] == 1
    # The record is copied from the captured stdout, which goes right after the record is written;
    # then only the record stays.
    wait_until(lambda: os.listdir(async_dir) == [JID], what="the side files to go")


def test_failing_module(launcher):
    launcher.launch('import sys\nprint(\'{"failed": true, "msg": "boom", "rc": 3}\')\nsys.exit(1)')
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_FAILED
    assert record.msg == f"job {JID} failed: boom (rc=3)"
    assert record.result["rc"] == 3
    assert record.exit_code == 1


def test_module_exiting_without_output(launcher):
    launcher.launch("import sys\nsys.stderr.write('oops\\n')\nraise SystemExit(2)")
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert record.exit_code == 2
    assert "exited with code 2" in record.msg
    assert record.result["rc"] == 2
    assert record.result["module_stderr"] == "oops\n"


def test_module_killed_by_a_signal(launcher):
    launcher.launch("import os, signal\nprint('{\"x\": 1}', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)")
    record = launcher.wait()
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_MODULE_CRASHED
    assert record.signal == "SIGKILL"
    assert record.exit_code is None
    assert "killed by SIGKILL" in record.msg
    assert record.result["rc"] == -1


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to fill needs root")
    point = tmp_path / "small"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], capture_output=True, check=False
    )
    if mounted.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


# The module first closes its stdin, the payload file: the disk is then filled to the last page.
FILL_THE_DISK = """
    import os
    os.close(0)
    {before}
    fd = os.open({filler!r}, os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\\0" * size)
        except OSError:
            pass
"""


def test_a_result_that_does_not_fit_is_recorded_as_not_saved(small_tmpfs, launcher):
    async_dir = launcher.async_dir = _store.ensure_async_dir(str(small_tmpfs / "async"))
    before = "print('{\"changed\": true, \"stdout\": \"done\"}', flush=True)"
    launcher.launch(FILL_THE_DISK.format(before=before, filler=str(small_tmpfs / "filler")))
    record = launcher.wait()
    # The output took the last free page; freeing it made room for a short record.
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_RESULT_NOT_SAVED
    assert record.msg.startswith(f"job {JID} succeeded, but its result could not be saved: cannot write the status file")
    assert "the disk is full" in record.msg
    assert record.result == {"failed": True, "msg": record.msg, "rc": 0}
    assert os.listdir(async_dir) == [JID]


def test_a_full_disk_at_the_end_leaves_the_job_lost_with_the_reason(small_tmpfs, launcher, wait_until):
    async_dir = launcher.async_dir = _store.ensure_async_dir(str(small_tmpfs / "async"))
    launcher.launch(FILL_THE_DISK.format(before="", filler=str(small_tmpfs / "filler")))
    meta = launcher.meta()
    wait_until(lambda: not _proc.pid_alive(meta["pid"]), what="the supervisor to give up")
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_SUPERVISOR_GONE
    assert f"because the file system of {async_dir} is full (free space there)" in record.msg
    # No temp file of the failed writes is left; the record still says running on disk.
    assert sorted(os.listdir(async_dir)) == [JID]
    os.unlink(small_tmpfs / "filler")
    assert _status.inspect_job(async_dir, JID).state == _record.LOST
    assert read_raw(async_dir)[_record.META_KEY]["state"] == _record.LOST


def kill_supervisor_and_wait_for_module(async_dir, wait_until) -> dict:
    """SIGKILL the job's supervisor, then wait until the module it ran has ended too; returns the record's meta."""
    meta = read_raw(async_dir)[_record.META_KEY]
    os.kill(meta["pid"], signal.SIGKILL)
    wait_until(
        lambda: not _proc.is_same_process(meta["job_pid"], meta["job_start_time"]), timeout=10, what="the module to end"
    )
    return meta


def test_the_result_of_a_module_that_outlived_its_supervisor_is_recovered(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(1); print('{\"changed\": true, \"x\": 1, \"warnings\": [\"own\"]}')")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.SUCCEEDED
    assert (record.result["x"], record.result["changed"]) == (1, True)
    assert record.exit_code is None
    assert record.result["warnings"][0] == "own"
    assert f"the supervisor of job {JID} (pid {meta['pid']}) died" in record.result["warnings"][1]
    # Written as the supervisor would have: the side files are gone, stock sees an ended job.
    document = read_raw(async_dir)
    assert document["finished"] is True and document["x"] == 1
    assert sorted(os.listdir(async_dir)) == [JID]


def test_a_module_that_outlived_its_supervisor_without_a_result_is_lost(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(1)")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    record = _status.inspect_job(async_dir, JID)
    assert (record.state, record.reason) == (_record.LOST, _record.REASON_SUPERVISOR_GONE)


def _inspect_state(async_dir: str) -> tuple:
    record = _status.inspect_job(async_dir, JID)
    return record.state, len((record.result or {}).get("x", ""))


def test_readers_that_find_the_dead_supervisor_together_all_see_the_recovered_result(launcher, async_dir, wait_until):
    import multiprocessing  # pylint: disable=import-outside-toplevel

    launcher.launch("import time; time.sleep(1); print('{\"x\": \"' + 'y' * 3000000 + '\"}')")
    meta = kill_supervisor_and_wait_for_module(async_dir, wait_until)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        states = pool.map(_inspect_state, [async_dir] * 4)
    assert states == [(_record.SUCCEEDED, 3000000)] * 4
