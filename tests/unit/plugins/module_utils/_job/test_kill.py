# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""mode=kill on real supervised jobs, including shells that ignore SIGTERM and children that left their group."""

from __future__ import annotations

import json
import os
import signal
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

NO_SUCH_PID = 2**22 + 12345


def start_stubborn(launcher, tmp_path: Path, wait_until, jid: str, *, grace: int = 10) -> t.Dict[str, int]:
    """A job whose shell ignores SIGTERM and SIGINT and whose child escaped with setsid; returns their pids."""
    inner_file = tmp_path / f"{jid}.inner"
    launcher.launch_shell(
        f"trap '' TERM INT; setsid sleep 300 & echo $! > {inner_file}.tmp; mv {inner_file}.tmp {inner_file}; wait",
        jid=jid,
        grace=grace,
    )
    inner = int(wait_until(lambda: inner_file.exists() and inner_file.read_text().strip(), what="the setsid child"))
    launcher.janitor.track(inner)
    meta = launcher.meta(jid)
    return {"supervisor": meta["pid"], "shell": meta["job_pid"], "setsid child": inner}


def alive(pids: t.Dict[str, int]) -> t.Dict[str, int]:
    return {name: pid for name, pid in pids.items() if _proc.pid_alive(pid)}


def test_kill_goes_through_the_supervisor_and_ends_the_whole_tree(launcher, async_dir, tmp_path, wait_until):
    # Not the default TERM, to show that the requested signal is the one sent (the shell ignores both).
    signal_name = "INT"
    pids = start_stubborn(launcher, tmp_path, wait_until, "j1.1")
    assert alive(pids) == pids

    started = time.monotonic()
    outcome = _kill.kill_jobs(async_dir, ["j1.1"], signal_name=signal_name, grace=1, wait=1 + _kill.KILL_SETTLE)
    elapsed = time.monotonic() - started

    assert outcome.signalled == ["j1.1"]
    assert outcome.refused == {}
    (record,) = outcome.records
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == f"SIG{signal_name}"
    assert record.msg == f"job j1.1 was killed on request with SIG{signal_name}, then SIGKILL after 1 s grace"
    # The requested grace, not the job's own 10 s.
    assert 1 <= elapsed < 5
    wait_until(lambda: not alive(pids), timeout=5, what=f"all of {pids} to be gone")
    on_disk = _store.read_record(async_dir, "j1.1")
    assert (on_disk.state, on_disk.signal, on_disk.msg) == (record.state, record.signal, record.msg)
    assert os.listdir(async_dir) == ["j1.1"]


def test_kill_of_several_jobs_reports_each_in_input_order(launcher, async_dir):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    launcher.launch("print('{\"done\": 1}')", jid="j2.2")
    launcher.launch("import time; time.sleep(60)", jid="j3.3")
    assert launcher.wait("j2.2").state == _record.SUCCEEDED

    outcome = _kill.kill_jobs(async_dir, ["j3.3", "j2.2", "j9.9", "j1.1"], signal_name="TERM", grace=5, wait=15)

    assert [record.jid for record in outcome.records] == ["j3.3", "j2.2", "j9.9", "j1.1"]
    assert [record.state for record in outcome.records] == [
        _record.KILLED,
        _record.SUCCEEDED,
        _record.NOT_FOUND,
        _record.KILLED,
    ]
    assert outcome.signalled == ["j3.3", "j1.1"]
    assert outcome.refused == {}


def test_kill_of_a_lost_job_kills_its_orphaned_tree(launcher, async_dir, tmp_path, wait_until):
    pids = start_stubborn(launcher, tmp_path, wait_until, "j1.1")
    os.kill(pids.pop("supervisor"), signal.SIGKILL)
    wait_until(lambda: _status.inspect_job(async_dir, "j1.1").state == _record.LOST, what="the job to be lost")
    assert alive(pids) == pids

    outcome = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="TERM", grace=1, wait=11)

    assert outcome.signalled == ["j1.1"]
    (record,) = outcome.records
    assert record.state == _record.KILLED
    assert record.reason == _record.REASON_KILL_REQUESTED
    assert record.signal == "SIGTERM"
    assert record.msg.startswith("job j1.1 was killed on request with SIGTERM, then SIGKILL after 1 s grace; ")
    assert "its supervisor had died" in record.msg
    assert record.result == {"failed": True, "msg": record.msg, "changed": True}
    assert record.ended_at is not None
    assert alive(pids) == {}
    assert _store.read_record(async_dir, "j1.1").state == _record.KILLED


def test_kill_of_a_lost_job_that_obeys_sigterm_needs_no_sigkill(launcher, async_dir, wait_until):
    launcher.launch_shell("sleep 300 & wait", jid="j1.1")
    meta = launcher.meta("j1.1")
    descendants = wait_until(lambda: _proc.live_descendants(meta["job_pid"]), what="the shell's child")
    os.kill(meta["pid"], signal.SIGKILL)
    wait_until(lambda: not _proc.pid_alive(meta["pid"]), what="the supervisor to die")

    (record,) = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="HUP", grace=5, wait=15).records

    assert record.state == _record.KILLED
    assert record.msg.startswith("job j1.1 was killed on request with SIGHUP; its supervisor had died")
    assert not any(_proc.pid_alive(pid) for pid in [meta["job_pid"], *descendants])


def test_check_mode_signals_nothing(launcher, async_dir, tmp_path, wait_until):
    launcher.launch("import time; time.sleep(60)", jid="j1.1")
    pids = start_stubborn(launcher, tmp_path, wait_until, "j2.2", grace=0)
    os.kill(pids.pop("supervisor"), signal.SIGKILL)
    wait_until(lambda: _status.inspect_job(async_dir, "j2.2").state == _record.LOST, what="j2.2 to be lost")

    outcome = _kill.kill_jobs(async_dir, ["j1.1", "j2.2"], signal_name="TERM", grace=0, wait=5, check_mode=True)

    assert outcome.signalled == ["j1.1", "j2.2"]
    assert [record.state for record in outcome.records] == [_record.RUNNING, _record.LOST]
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING
    assert _store.read_kill_request(async_dir, "j1.1") is None
    assert alive(pids) == pids
    assert _store.read_record(async_dir, "j2.2").state == _record.LOST


def test_a_stock_running_record_is_refused(async_dir):
    Path(async_dir, "j1.1").write_text(json.dumps({"started": 1, "finished": 0, "ansible_job_id": "j1.1"}))

    outcome = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="TERM", grace=0, wait=1)

    assert outcome.signalled == []
    assert outcome.records[0].state == _record.RUNNING
    message = outcome.refused["j1.1"]
    assert message.startswith("job j1.1 was started by stock async and records no process id")
    assert "launch jobs with longrun.jobs.run to be able to kill them" in message
    assert os.listdir(async_dir) == ["j1.1"]


def lost_record(async_dir: str, **changes: t.Any) -> None:
    """A running record whose supervisor is gone (a pid that cannot exist)."""
    values = dict(jid="j1.1", state=_record.RUNNING, pid=NO_SUCH_PID, pid_start_time=1, boot_id=_proc.read_boot_id())
    values.update(changes)
    _store.write_record(async_dir, _record.JobRecord(**values))


@pytest.mark.parametrize(
    "changes",
    [
        {"job_start_time": None},
        {"job_start_time": "other"},
        {"boot_id": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=["start-time-unknown", "pid-reused", "rebooted"],
)
def test_a_lost_job_is_only_killed_when_its_process_is_surely_its_own(async_dir, spawn, changes):
    bystander = spawn(["sleep", "60"])
    start_time = _proc.process_start_time(bystander.pid)
    if changes.get("job_start_time") == "other":
        changes["job_start_time"] = start_time + 1
    if "boot_id" in changes and _proc.read_boot_id() is None:
        pytest.skip("this host has no readable boot id")
    lost_record(async_dir, **dict({"job_pid": bystander.pid, "job_start_time": start_time}, **changes))

    outcome = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="TERM", grace=0, wait=1)

    assert outcome.signalled == []
    assert outcome.records[0].state == _record.LOST
    time.sleep(0.1)
    assert bystander.poll() is None


def test_a_lost_job_whose_process_is_gone_is_reported_lost(async_dir):
    lost_record(async_dir, job_pid=NO_SUCH_PID, job_start_time=1)

    outcome = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="TERM", grace=0, wait=1)

    assert outcome.signalled == []
    assert outcome.records[0].state == _record.LOST
    assert outcome.records[0].reason == _record.REASON_SUPERVISOR_GONE


def test_an_unknown_signal_is_refused_before_anything_is_signalled(launcher, async_dir):
    launcher.launch("import time; time.sleep(60)")
    with pytest.raises(ValueError, match="unknown signal 'BOGUS'"):
        _kill.kill_jobs(async_dir, ["j1.1"], signal_name="BOGUS", grace=0, wait=1)
    assert _status.inspect_job(async_dir, "j1.1").state == _record.RUNNING
    assert _store.read_kill_request(async_dir, "j1.1") is None


def test_the_kill_of_a_lost_job_ends_its_tree_with_the_shared_routine(launcher, async_dir, wait_until, monkeypatch):
    launcher.launch_shell("sleep 300 & wait", jid="j1.1")
    meta = launcher.meta("j1.1")
    wait_until(lambda: _proc.live_descendants(meta["job_pid"]), what="the shell's child")
    os.kill(meta["pid"], signal.SIGKILL)
    wait_until(lambda: not _proc.pid_alive(meta["pid"]), what="the supervisor to die")
    calls = []
    terminate_tree = _proc.terminate_tree

    def spy(root_pid: int, **options: t.Any) -> str:
        calls.append(dict(options, root_pid=root_pid))
        return terminate_tree(root_pid, **options)

    monkeypatch.setattr(_proc, "terminate_tree", spy)

    (record,) = _kill.kill_jobs(async_dir, ["j1.1"], signal_name="TERM", grace=5, wait=15).records

    assert record.state == _record.KILLED
    # The job's process is the root and is signalled too: it is not our child, so nothing is reaped.
    [call] = calls
    assert (call["root_pid"], call["include_root"], call["process_group"]) == (meta["job_pid"], True, meta["job_pid"])
    assert (call["grace"], call["first_signal"], call.get("on_reaped")) == (5, signal.SIGTERM, None)
    assert call["final_wait"] == _kill.KILL_SETTLE
