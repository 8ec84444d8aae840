# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Locks held by supervisors: the option, the lock files, and real launches that wait for each other."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import housekeeping as _housekeeping
from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill
from ansible_collections.longrun.jobs.plugins.module_utils._job import locks as _locks
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store


def launch_locked(async_dir: str, janitor, jid: str, script: str, *, locks, lock_timeout=None, timeout=30) -> dict:
    # A module's result follows the script: the job succeeds when the script ran.
    script += "; echo '{\"changed\": true}'"
    source = f"import os\nos.execvp('sh', ['sh', '-c', {script!r}])\n"
    spec = _handshake.LaunchSpec(
        jid=jid, async_dir=async_dir, timeout=timeout, grace=1, interpreter=sys.executable,
        payload=textwrap.dedent(source).encode("utf-8"), locks=locks, lock_timeout=lock_timeout,
    )
    first = _handshake.launch(spec)
    janitor.track_job(async_dir, jid)
    return first


def wait_for(async_dir: str, jid: str, timeout: float = 20) -> _record.JobRecord:
    (record,) = _status.wait_for_jobs(async_dir, [jid], timeout=timeout)
    return record


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, []),
        ("backup", ["backup"]),
        (["b", "a", "b"], ["a", "b"]),
        (["rpm", "apt"], ["apt", "rpm"]),
        (["zz", "dpkg", "aa"], ["aa", "dpkg", "zz"]),
    ],
)
def test_normalize_locks(value, expected):
    assert _locks.normalize_locks(value) == expected


@pytest.mark.parametrize(
    "value, words",
    [
        (5, "lock must be a lock name or a list"),
        (["../etc"], "lock name '../etc' is not valid"),
        ([""], "is not valid"),
        ("j123.4", "is not valid"),
        (["dpkg", "apt"], "are the same lock ('dpkg')"),
        (["dnf", "yum"], "are the same lock ('rpm')"),
    ],
)
def test_normalize_locks_refuses_with_a_sentence(value, words):
    with pytest.raises(_locks.LockError, match=None) as caught:
        _locks.normalize_locks(value)
    assert words in str(caught.value)


def test_lock_files_are_private_and_name_their_holder(async_dir):
    first = _locks.LockSet(async_dir, ["db"], "j1.1")
    second = _locks.LockSet(async_dir, ["db"], "j2.2")
    try:
        assert first.take() is None
        busy = second.take()
        assert busy is not None
        assert busy.as_dict() == {"lock": "db", "holder": "j1.1", "holder_pid": os.getpid()}
        assert "the lock 'db' held by job j1.1" in busy.describe()
        directory = os.path.join(async_dir, _locks.LOCKS_DIR)
        assert stat.S_IMODE(os.lstat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(os.path.join(directory, "db")).st_mode) == 0o600
        first.close()
        assert second.take() is None
    finally:
        first.close()
        second.close()


def test_a_killed_holder_releases_its_lock(async_dir, janitor):
    holder_source = textwrap.dedent(f"""
        import sys, time
        from ansible_collections.longrun.jobs.plugins.module_utils._job import locks
        held = locks.LockSet({async_dir!r}, ["db"], "j7.7")
        assert held.take() is None
        print("held", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", holder_source], stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    janitor.track(holder.pid)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        waiter = _locks.LockSet(async_dir, ["db"], "j8.8")
        try:
            busy = waiter.take()
            assert busy is not None and busy.holder == "j7.7" and busy.holder_pid == holder.pid
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            assert waiter.take() is None
        finally:
            waiter.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_posix_lock_holder_names_the_process(tmp_path, janitor):
    path = tmp_path / "lock-frontend"
    path.write_bytes(b"")
    source = textwrap.dedent(f"""
        import fcntl, os, time
        fd = os.open({str(path)!r}, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-c", source], stdout=subprocess.PIPE,
    )
    janitor.track(holder.pid)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        fd = os.open(str(path), os.O_RDWR)
        try:
            with pytest.raises(OSError):
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if sys.platform.startswith("linux"):
                assert _locks._posix_lock_holder(fd) == holder.pid  # pylint: disable=protected-access
        finally:
            os.close(fd)
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def test_jobs_with_one_lock_run_one_at_a_time(async_dir, janitor, tmp_path):
    marks = tmp_path / "marks"
    script = f"echo start $(date +%s.%N) >> {marks}; sleep 2; echo end $(date +%s.%N) >> {marks}"
    first = launch_locked(async_dir, janitor, "j1.1", script, locks=["db"])
    assert first["state"] == _record.RUNNING
    assert first["locks"] == ["db"]
    second = launch_locked(async_dir, janitor, "j2.2", script, locks=["db"])
    assert second["state"] == _record.WAITING
    assert second["waiting_for"]["lock"] == "db"
    assert second["waiting_for"]["holder"] == "j1.1"
    record = _status.inspect_job(async_dir, "j2.2")
    assert record.state == _record.WAITING and not record.finished
    ends = [wait_for(async_dir, jid) for jid in ("j1.1", "j2.2")]
    assert [end.state for end in ends] == [_record.SUCCEEDED, _record.SUCCEEDED]
    lines = marks.read_text().split()
    times = [float(value) for value in lines[1::2]]
    assert lines[0::2] == ["start", "end", "start", "end"]
    assert times[1] <= times[2]
    # The second job's clock started with the job, not with its launch.
    assert _record.parse_time(ends[1].started_at) >= _record.parse_time(ends[0].started_at)
    assert ends[1].waiting_for is None


def test_lock_timeout_fails_the_job_naming_the_holder(async_dir, janitor):
    launch_locked(async_dir, janitor, "j1.1", "sleep 5", locks=["db"])
    started = time.monotonic()
    launch_locked(async_dir, janitor, "j2.2", "echo never", locks=["db"], lock_timeout=1)
    record = wait_for(async_dir, "j2.2")
    assert 0.9 <= time.monotonic() - started <= 6
    assert record.state == _record.FAILED
    assert record.reason == _record.REASON_LOCK_TIMEOUT
    assert "never started: the lock 'db' held by job j1.1" in record.msg
    assert "within 1 s (lock_timeout)" in record.msg
    assert record.result == {"failed": True, "msg": record.msg, "changed": False}
    assert not os.path.exists(_store.side_path(async_dir, "j2.2", ".stdout"))


def test_a_kill_request_ends_a_waiting_job(async_dir, janitor):
    launch_locked(async_dir, janitor, "j1.1", "sleep 10", locks=["db"])
    launch_locked(async_dir, janitor, "j2.2", "echo never", locks=["db"])
    outcome = _kill.kill_jobs(async_dir, ["j2.2"], signal_name="TERM", grace=1, wait=10)
    (record,) = outcome.records
    assert outcome.killed == ["j2.2"]
    assert record.state == _record.KILLED
    assert "while it waited for the lock 'db' held by job j1.1" in record.msg
    assert "never started" in record.msg


def test_kill_9_of_the_holding_supervisor_lets_the_next_job_start(async_dir, janitor):
    holder = launch_locked(async_dir, janitor, "j1.1", "sleep 30", locks=["db"])
    launch_locked(async_dir, janitor, "j2.2", "echo ran", locks=["db"])
    time.sleep(0.3)
    assert _status.inspect_job(async_dir, "j2.2").state == _record.WAITING
    os.kill(holder["pid"], signal.SIGKILL)
    record = wait_for(async_dir, "j2.2")
    assert record.state == _record.SUCCEEDED


def test_a_waiting_supervisor_that_died_is_lost(async_dir, janitor):
    launch_locked(async_dir, janitor, "j1.1", "sleep 30", locks=["db"])
    waiting = launch_locked(async_dir, janitor, "j2.2", "echo never", locks=["db"])
    os.kill(waiting["pid"], signal.SIGKILL)
    janitor.wait_until_gone(waiting["pid"])
    record = _status.inspect_job(async_dir, "j2.2")
    assert record.state == _record.LOST
    assert record.reason == _record.REASON_SUPERVISOR_GONE


def test_locks_are_taken_in_order_without_deadlock(async_dir, janitor, tmp_path):
    marks = tmp_path / "marks"
    script = f"echo $(date +%s.%N) >> {marks}; sleep 0.5"
    for index, locks in enumerate((["a", "b"], ["b", "a"], ["b"], ["a"])):
        launch_locked(async_dir, janitor, f"j{index + 1}.1", script, locks=locks)
    records = [wait_for(async_dir, f"j{index + 1}.1") for index in range(4)]
    assert [record.state for record in records] == [_record.SUCCEEDED] * 4


def test_a_preset_without_its_package_manager_refuses_the_launch(async_dir, janitor):
    if os.path.exists("/var/lib/rpm/.rpm.lock") or os.path.exists("/usr/lib/sysimage/rpm/.rpm.lock"):
        pytest.skip("this host has rpm")
    with pytest.raises(_handshake.LaunchError) as caught:
        launch_locked(async_dir, janitor, "j1.1", "echo never", locks=["rpm"])
    assert "found no rpm on this host" in str(caught.value)
    assert _store.read_record(async_dir, "j1.1") is None


def test_cleanup_keeps_a_waiting_job_and_list_shows_it(async_dir, janitor):
    launch_locked(async_dir, janitor, "j1.1", "sleep 10", locks=["db"])
    launch_locked(async_dir, janitor, "j2.2", "echo never", locks=["db"])
    listed = _housekeeping.list_jobs(async_dir, states=[_record.WAITING])
    assert [job.record.jid for job in listed] == ["j2.2"]
    outcome = _housekeeping.cleanup_jobs(async_dir)
    assert sorted(outcome.spared) == ["j1.1", "j2.2"]
    reply = _status_request.cleanup_one(async_dir, "j2.2")
    assert reply.removed == []
    assert reply.jobs[0].job["reason"] == _record.WAITING
    assert "is still waiting for its locks" in reply.jobs[0].job["msg"]
    forced = _housekeeping.cleanup_jobs(async_dir, force=True, grace=1)
    assert sorted(forced.removed) == ["j1.1", "j2.2"]
    assert sorted(forced.killed) == ["j1.1", "j2.2"]


def test_a_waiting_job_names_each_new_holder(async_dir, janitor, wait_until):
    for jid in ("j1.1", "j2.2", "j3.3"):
        launch_locked(async_dir, janitor, jid, "sleep 3", locks=["db"])
    assert _status.inspect_job(async_dir, "j3.3").waiting_for["holder"] == "j1.1"

    def second_holder():
        records = {jid: _status.inspect_job(async_dir, jid) for jid in ("j2.2", "j3.3")}
        running = [jid for jid, record in records.items() if record.state == _record.RUNNING]
        return running and (running, records)

    running, records = wait_until(second_holder, what="the second job to take the lock")
    (other,) = {"j2.2", "j3.3"} - set(running)
    assert records[other].state == _record.WAITING
    wait_until(lambda: (_status.inspect_job(async_dir, other).waiting_for or {}).get("holder") == running[0],
               what="the waiting job to name its new holder")
    assert [wait_for(async_dir, jid, timeout=30).state for jid in ("j1.1", "j2.2", "j3.3")] == [_record.SUCCEEDED] * 3


def test_a_lock_file_that_is_a_symlink_refuses_the_launch(async_dir, janitor, tmp_path):
    os.mkdir(os.path.join(async_dir, _locks.LOCKS_DIR), 0o700)
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(async_dir, _locks.LOCKS_DIR, "db"))
    with pytest.raises(_handshake.LaunchError) as caught:
        launch_locked(async_dir, janitor, "j1.1", "echo never", locks=["db"])
    assert "cannot open the lock file" in str(caught.value)
    assert not (tmp_path / "elsewhere").exists()
    assert _store.read_record(async_dir, "j1.1") is None
