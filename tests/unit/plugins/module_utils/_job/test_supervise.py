# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The supervisor's watch: limits, kill requests, signals and its own death, with real launches."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

JID = "j1.1"
WAIT = 20


def read_raw(async_dir: str, jid: str = JID) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)


def test_timeout_terminates_the_module(launcher):
    started = time.monotonic()
    launcher.launch("import time; time.sleep(60)", timeout=2, grace=1)
    record = launcher.wait()
    elapsed = time.monotonic() - started
    assert record.state == _record.TIMED_OUT
    assert record.reason == _record.REASON_ASYNC_LIMIT
    assert record.signal == "SIGTERM"
    assert "timed out after 2 s" in record.msg
    assert record.result["failed"] is True
    assert 2 <= elapsed <= 2 + 1 + 3


def test_timeout_kills_the_whole_tree_including_escapees(launcher, tmp_path, wait_until, janitor):
    pid_file = tmp_path / "pids.json"
    inner_file = tmp_path / "inner.pid"
    source = f"""
        import json, os, subprocess, time
        escaped = subprocess.Popen(["setsid", "sleep", "300"])
        stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300 & echo $! > {inner_file}; wait"])
        with open({str(pid_file) + ".tmp"!r}, "w") as handle:
            json.dump({{"escaped": escaped.pid, "stubborn": stubborn.pid}}, handle)
        os.replace({str(pid_file) + ".tmp"!r}, {str(pid_file)!r})
        time.sleep(300)
    """
    started = time.monotonic()
    launcher.launch(source, timeout=1, grace=1)
    meta = read_raw(launcher.async_dir)[_record.META_KEY]
    pids = {"job": meta["job_pid"]}
    try:
        pids.update(
            wait_until(lambda: pid_file.exists() and json.loads(pid_file.read_text()), timeout=5, what="the pid file")
        )
        pids["inner"] = int(
            wait_until(lambda: inner_file.exists() and inner_file.read_text().strip(), timeout=5, what="the inner pid")
        )
        for pid in pids.values():
            janitor.track(pid)
        record = launcher.wait()
        assert record.state == _record.TIMED_OUT
        assert "then SIGKILL after 1 s grace" in record.msg
        assert time.monotonic() - started <= 1 + 1 + 3
        alive = {name: pid for name, pid in pids.items() if _proc.pid_alive(pid)}
        assert alive == {}
        assert _proc.live_descendants(meta["pid"]) == []
    finally:
        for pid in pids.values():
            if _proc.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_killed_supervisor_is_reported_lost(launcher, async_dir):
    launcher.launch("import time; time.sleep(30)")
    meta = read_raw(async_dir)[_record.META_KEY]
    try:
        os.kill(meta["pid"], signal.SIGKILL)
        record = launcher.wait(timeout=10)
        assert record.state == _record.LOST
        assert record.reason == _record.REASON_SUPERVISOR_GONE
        assert str(meta["pid"]) in record.msg
        # The lost end is persisted so that stock async_status sees it as finished too.
        document = read_raw(async_dir)
        assert "started" not in document
        assert document["failed"] is True
        assert document[_record.META_KEY]["state"] == _record.LOST
    finally:
        job_pid = read_raw(async_dir)[_record.META_KEY]["job_pid"]
        try:
            os.killpg(job_pid, signal.SIGKILL)
        except OSError:
            pass


def test_changed_boot_id_is_reported_as_a_reboot(launcher, async_dir, monkeypatch, tmp_path):
    if _proc.read_boot_id() is None:
        pytest.skip("this host has no readable boot id")
    launcher.launch("import time; time.sleep(30)")
    assert _status.inspect_job(async_dir, JID).state == _record.RUNNING
    other_boot = tmp_path / "other_boot_id"
    other_boot.write_text("00000000-0000-0000-0000-000000000000\n")
    # Only this process sees the new boot id; the supervisor keeps running.
    monkeypatch.setenv(_proc.BOOT_ID_FILE_ENV, str(other_boot))
    record = _status.inspect_job(async_dir, JID)
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_HOST_REBOOTED


def test_sigterm_to_the_supervisor_kills_the_job(launcher, async_dir, wait_until):
    launcher.launch("import time; time.sleep(30)", grace=2)
    meta = read_raw(async_dir)[_record.META_KEY]
    os.kill(meta["pid"], signal.SIGTERM)
    record = launcher.wait(timeout=10)
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == "SIGTERM"
    assert record.msg == f"job {JID} was killed on request with SIGTERM"
    assert not _proc.pid_alive(meta["job_pid"])
    wait_until(
        lambda: not _proc.is_same_process(meta["pid"], meta["pid_start_time"]), timeout=5, what="the supervisor to exit"
    )


def test_several_jobs_in_one_dir(launcher, async_dir):
    launcher.launch("print('{\"n\": 1}')", jid="j1.1")
    launcher.launch("import time; time.sleep(0.5); print('{\"n\": 2}')", jid="j1.2")
    first, second = _status.wait_for_jobs(async_dir, ["j1.1", "j1.2"], timeout=WAIT)
    assert (first.state, first.result) == (_record.SUCCEEDED, {"n": 1})
    assert (second.state, second.result) == (_record.SUCCEEDED, {"n": 2})


def test_a_running_record_that_cannot_be_written_does_not_end_the_watch(launcher, async_dir, monkeypatch):
    # The disk fills up (the job itself may fill it) just as the supervisor adds the job's pid to the record.
    # The supervisor is forked from this process, so it runs with this write_record.
    real_write = _store.write_record

    def full_disk_once_started(directory, record, **options):
        if record.state == _record.RUNNING and record.job_pid:
            raise _store.StoreError(f"cannot write the status file {directory}/{record.jid}: the disk is full")
        return real_write(directory, record, **options)

    monkeypatch.setattr(_store, "write_record", full_disk_once_started)
    launcher.launch("import time; time.sleep(1); print('{\"n\": 1}')")
    record = launcher.wait()
    assert (record.state, record.result) == (_record.SUCCEEDED, {"n": 1})
    # The end removed the job's work dir and side files: only the record is left.
    assert os.listdir(async_dir) == [JID]


def test_the_record_carries_the_start_time_of_the_job_process(launcher, async_dir):
    launcher.launch("import time; time.sleep(30)")
    meta = read_raw(async_dir)[_record.META_KEY]
    assert meta["job_start_time"] == _proc.process_start_time(meta["job_pid"])
    assert meta["job_start_time"] is not None
    assert _store.read_record(async_dir, JID).job_start_time == meta["job_start_time"]


def stubborn(ready_file) -> str:
    """A job that ignores every signal a kill may start with (so only SIGKILL ends it), then says it is ready."""
    return (
        "import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
        f"open({str(ready_file)!r}, 'w').close()\n"
        "time.sleep(60)\n"
    )


def obedient(ready_file) -> str:
    return f"import time\nopen({str(ready_file)!r}, 'w').close()\ntime.sleep(60)\n"


@pytest.mark.parametrize("ignored", [signal.SIGHUP, signal.SIGINT], ids=["nohup", "shell-background"])
def test_signals_the_launcher_ignores_still_end_the_job(launcher, async_dir, tmp_path, wait_until, ignored):
    """An agent started under nohup (SIGHUP ignored) or in a shell's background (SIGINT ignored) passes that on
    through exec; the job must still end on the signal that mode=kill sends, without SIGKILL."""
    ready = tmp_path / "ready"
    previous = signal.signal(ignored, signal.SIG_IGN)
    try:
        launcher.launch(obedient(ready), grace=10)
    finally:
        signal.signal(ignored, previous)
    wait_until(ready.exists, what="the job to start")
    meta = read_raw(async_dir)[_record.META_KEY]
    name = signal.Signals(ignored).name[3:]
    _store.write_kill_request(async_dir, JID, signal_name=name, grace=5)
    os.kill(meta["pid"], signal.SIGUSR1)
    record = launcher.wait(timeout=10)
    assert record.msg == f"job {JID} was killed on request with SIG{name}"


@pytest.mark.parametrize(
    "source, signal_name, grace, expected_msg",
    [
        (stubborn, "INT", 1, "was killed on request with SIGINT, then SIGKILL after 1 s grace"),
        (stubborn, "HUP", 0, "was killed on request with SIGHUP, then SIGKILL after 0 s grace"),
        (obedient, "HUP", 3, "was killed on request with SIGHUP"),
        (stubborn, "KILL", 3, "was killed on request with SIGKILL"),
    ],
    ids=["int-escalates", "hup-no-grace", "hup-enough", "kill-at-once"],
)
def test_kill_request_uses_the_requested_signal_and_grace(
    launcher, async_dir, tmp_path, wait_until, source, signal_name, grace, expected_msg
):
    ready = tmp_path / "ready"
    launcher.launch(source(ready), grace=10)
    wait_until(ready.exists, what="the job to set up its signal handling")
    meta = read_raw(async_dir)[_record.META_KEY]
    _store.write_kill_request(async_dir, JID, signal_name=signal_name, grace=grace)
    started = time.monotonic()
    os.kill(meta["pid"], signal.SIGUSR1)
    record = launcher.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == f"SIG{signal_name}"
    assert record.msg == f"job {JID} {expected_msg}"
    assert record.result == {"failed": True, "msg": record.msg, "changed": True}
    # The job's own grace (10 s) was not used.
    assert elapsed < grace + 4
    if "then SIGKILL" in expected_msg:
        assert elapsed >= grace
    assert not _proc.pid_alive(meta["job_pid"])
    # The request is a side file and goes with the others.
    assert os.listdir(async_dir) == [JID]


@pytest.mark.parametrize(
    "request_text",
    [None, "not json", '{"signal": "INT"}', '{"signal": "INT", "grace": -1}', '{"signal": "BOGUS", "grace": 7}'],
    ids=["no-request", "garbage", "no-grace", "negative-grace", "unknown-signal"],
)
def test_kill_without_a_usable_request_uses_sigterm_and_the_job_grace(
    launcher, async_dir, tmp_path, wait_until, request_text
):
    ready = tmp_path / "ready"
    launcher.launch(stubborn(ready), grace=0)
    wait_until(ready.exists, what="the job to set up its signal handling")
    meta = read_raw(async_dir)[_record.META_KEY]
    if request_text is not None:
        with open(_store.side_path(async_dir, JID, ".kill"), "w", encoding="utf-8") as handle:
            handle.write(request_text)
    os.kill(meta["pid"], signal.SIGUSR1)
    record = launcher.wait(timeout=10)
    assert record.state == _record.KILLED
    assert record.signal == "SIGTERM"
    assert record.msg == f"job {JID} was killed on request with SIGTERM, then SIGKILL after 0 s grace"
    assert os.listdir(async_dir) == [JID]


def test_the_record_holds_the_supervisor_peak_memory(launcher, async_dir):
    launcher.launch('print(\'{"changed": false}\')')
    launcher.wait()
    assert 0 < read_raw(async_dir)[_record.META_KEY]["supervisor_max_rss"] < 200 * 1024


STRAY_SIGNALS = (signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGTSTP)


def test_stray_signals_to_the_supervisor_change_nothing(launcher, async_dir, wait_until, tmp_path):
    started = tmp_path / "started"
    launcher.launch(
        f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(1.5); print('{{\"survived\": true}}')"
    )
    wait_until(started.exists, timeout=10, what="the module to start")
    meta = read_raw(async_dir)[_record.META_KEY]
    for signum in STRAY_SIGNALS:
        os.kill(meta["pid"], signum)
    time.sleep(0.2)
    assert _proc.is_same_process(meta["pid"], meta["pid_start_time"])
    record = launcher.wait(timeout=10)
    assert record.state == _record.SUCCEEDED
    assert record.result["survived"] is True
