# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Job names on real files and real supervised jobs: the claim, on_existing, stale mappings and pruning."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names
from ansible_collections.longrun.jobs.plugins.module_utils._job import proc as _proc
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import LaunchRequest, StatusRequest

SLEEPER = "import time\ntime.sleep(60)\n"


class Starts:
    """A start function for launch_named that launches real jobs and counts its calls."""

    def __init__(self, launcher, *, source: str = SLEEPER) -> None:
        self.launcher = launcher
        self.source = source
        self.jids: t.List[str] = []

    def __call__(self) -> t.Tuple[str, dict]:
        jid = f"j{len(self.jids) + 1}.{os.getpid()}"
        job = self.launcher.launch(self.source, jid=jid)
        self.jids.append(jid)
        return jid, job


def test_a_new_name_launches_and_maps_the_name_privately(launcher, async_dir):
    start = Starts(launcher)

    existing, jid, job = _names.launch_named(async_dir, "backup-db", "attach", start, grace=1)

    assert existing is None
    assert start.jids == [jid]
    assert job["state"] == "running"
    assert _names.read_mapping(async_dir, "backup-db") == jid
    assert stat.S_IMODE(os.stat(_names.names_dir(async_dir)).st_mode) == 0o700
    for entry in os.listdir(_names.names_dir(async_dir)):
        assert stat.S_IMODE(os.stat(os.path.join(_names.names_dir(async_dir), entry)).st_mode) == 0o600
    with open(_names.mapping_path(async_dir, "backup-db"), encoding="utf-8") as handle:
        assert json.load(handle) == {"jid": jid}


@pytest.mark.parametrize("on_existing", ["attach", "skip"])
def test_a_running_job_of_the_name_is_found_and_nothing_launches(launcher, async_dir, on_existing):
    start = Starts(launcher)
    _existing, first, _job = _names.launch_named(async_dir, "nightly", "attach", start, grace=1)

    existing, jid, job = _names.launch_named(async_dir, "nightly", on_existing, start, grace=1)

    assert (existing, jid) == (on_existing, first)
    assert job["state"] == "running"
    assert start.jids == [first]


def test_an_ended_job_not_collected_yet_is_attached_to(launcher, async_dir):
    start = Starts(launcher, source="print('{\"changed\": true}')\n")
    _existing, first, _job = _names.launch_named(async_dir, "quick", "attach", start, grace=1)
    assert launcher.wait(first).state == _record.SUCCEEDED

    existing, jid, job = _names.launch_named(async_dir, "quick", "attach", start, grace=1)

    assert (existing, jid, job["state"]) == ("attach", first, "succeeded")
    assert start.jids == [first]


def test_fail_names_the_job_its_state_and_the_fix(launcher, async_dir):
    start = Starts(launcher)
    _existing, first, _job = _names.launch_named(async_dir, "migrate", "attach", start, grace=1)

    with pytest.raises(_names.NameTaken) as caught:
        _names.launch_named(async_dir, "migrate", "fail", start, grace=1)

    message = str(caught.value)
    assert f"a job named 'migrate' exists (job {first} is running)" in message
    assert "async_status jid=migrate" in message
    assert "on_existing to attach" in message
    assert start.jids == [first]


def test_restart_kills_the_running_job_removes_it_and_launches_anew(launcher, async_dir):
    start = Starts(launcher)
    _existing, first, _job = _names.launch_named(async_dir, "reindex", "attach", start, grace=1)
    supervisor = _store.read_record(async_dir, first).pid

    existing, second, job = _names.launch_named(async_dir, "reindex", "restart", start, grace=1)

    assert existing is None
    assert second != first
    assert job["state"] == "running"
    assert _store.read_record(async_dir, first) is None
    assert not _proc.pid_alive(supervisor) or _proc.process_start_time(supervisor) is None
    assert _names.read_mapping(async_dir, "reindex") == second


@pytest.mark.parametrize("problem", ["no record", "unreadable record", "garbage mapping"])
def test_a_stale_mapping_launches_anew(launcher, async_dir, problem):
    start = Starts(launcher)
    _names.ensure_names_dir(async_dir)
    if problem == "garbage mapping":
        with open(_names.mapping_path(async_dir, "report"), "w", encoding="utf-8") as handle:
            handle.write("not json")
    else:
        _names.write_mapping(async_dir, "report", "j7.7")
        if problem == "unreadable record":
            with open(_store.record_path(async_dir, "j7.7"), "w", encoding="utf-8") as handle:
                handle.write("{")

    existing, jid, _job = _names.launch_named(async_dir, "report", "fail", start, grace=1)

    assert existing is None
    assert start.jids == [jid]
    assert _names.read_mapping(async_dir, "report") == jid


def test_the_supervisor_does_not_keep_the_claim(launcher, async_dir):
    """The launcher forks the supervisor while it holds the claim: the next launch must not wait for the job."""
    _names.launch_named(async_dir, "held", "attach", Starts(launcher), grace=1)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        with _names.claim(async_dir, "held", blocking=False) as held:
            os.write(write_fd, b"1" if held else b"0")
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as handle:
        assert handle.read() == b"1"


def test_two_racing_launches_start_one_job(launcher, async_dir, janitor):
    """Each launcher process claims the name; the second waits, then finds the first's job."""
    results_path = os.path.join(os.path.dirname(async_dir), "race")
    children = []
    for index in range(2):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                def start() -> t.Tuple[str, dict]:
                    jid = f"j{index + 1}.{os.getpid()}"
                    # Slow enough that the other launch surely asks for the claim meanwhile.
                    time.sleep(0.5)
                    return jid, launcher_launch(async_dir, jid)

                existing, jid, _job = _names.launch_named(async_dir, "race", "attach", start, grace=1)
                with open(f"{results_path}.{index}", "w", encoding="utf-8") as handle:
                    json.dump({"existing": existing, "jid": jid}, handle)
            finally:
                os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    results = []
    for index in range(2):
        with open(f"{results_path}.{index}", encoding="utf-8") as handle:
            results.append(json.load(handle))
    for result in results:
        janitor.track_job(async_dir, result["jid"])
    assert results[0]["jid"] == results[1]["jid"]
    assert sorted(str(result["existing"]) for result in results) == ["None", "attach"]
    assert _store.list_jids(async_dir) == [results[0]["jid"]]


def launcher_launch(async_dir: str, jid: str) -> dict:
    spec = _handshake.LaunchSpec(
        jid=jid, async_dir=async_dir, timeout=30, grace=1, interpreter=sys.executable, payload=SLEEPER.encode(),
    )
    return _handshake.launch(spec)


def test_resolve_takes_jids_as_they_are_and_names_through_their_mapping(launcher, async_dir):
    _existing, jid, _job = _names.launch_named(async_dir, "db", "attach", Starts(launcher), grace=1)
    _names.write_mapping(async_dir, "gone", "j9.9")

    assert _names.resolve(async_dir, "j5.5") == "j5.5"
    assert _names.resolve(async_dir, "db") == jid
    assert _names.resolve(async_dir, "gone") is None
    assert _names.resolve(async_dir, "never") is None


def test_prune_removes_only_names_that_stand_for_nothing(launcher, async_dir):
    _existing, jid, _job = _names.launch_named(async_dir, "live", "attach", Starts(launcher), grace=1)
    _names.write_mapping(async_dir, "gone", "j9.9")

    assert _names.prune(async_dir) == ["gone"]

    assert _names.read_mapping(async_dir, "live") == jid
    assert not os.path.exists(_names.mapping_path(async_dir, "gone"))


def test_a_names_dir_writable_by_others_is_refused(async_dir):
    os.mkdir(_names.names_dir(async_dir), 0o700)
    os.chmod(_names.names_dir(async_dir), 0o777)

    with pytest.raises(_store.StoreError, match="writable by other users"):
        _names.ensure_names_dir(async_dir)
    assert stat.S_IMODE(os.stat(_names.names_dir(async_dir)).st_mode) == 0o777


def launch_message(async_dir: str, name: str, on_existing: str = "attach") -> dict:
    return LaunchRequest(
        jid="j42", async_dir=async_dir, timeout=30, grace=1, interpreter=sys.executable,
        payload=base64.b64encode(SLEEPER.encode()).decode(), name=name, on_existing=on_existing,
    ).to_wire()


def test_the_agent_launches_a_named_job_once_and_resolves_its_name(async_dir, janitor):

    first = _agent.serve(launch_message(async_dir, "agent-job"))
    janitor.track_job(async_dir, first["ansible_job_id"])
    again = _agent.serve(launch_message(async_dir, "agent-job"))

    assert first["existing"] is None
    assert first["job"]["name"] == "agent-job"
    assert again["existing"] == "attach"
    assert again["ansible_job_id"] == first["ansible_job_id"]
    with pytest.raises(_agent.AgentError, match="a job named 'agent-job' exists"):
        _agent.serve(launch_message(async_dir, "agent-job", "fail"))

    status = _agent.serve(StatusRequest(jids=["agent-job", "nobody"], async_dir=async_dir).to_wire())
    named, unknown = status["jobs"]
    assert named["ansible_job_id"] == first["ansible_job_id"]
    assert named["job"]["name"] == "agent-job"
    assert unknown["ansible_job_id"] == "nobody"
    assert unknown["job"]["state"] == "not_found"
    assert "could not find a job named 'nobody'" in unknown["job"]["msg"]
    killed = _agent.serve(
        StatusRequest(mode="kill", jids=["agent-job"], wait=12, grace=1, async_dir=async_dir).to_wire()
    )
    assert killed["killed"] == [first["ansible_job_id"]]
    cleaned = _agent.serve(StatusRequest(mode="cleanup", jids=["agent-job"], async_dir=async_dir).to_wire())
    assert cleaned["removed"] == [first["ansible_job_id"]]
    assert not os.path.exists(_names.mapping_path(async_dir, "agent-job"))


def test_a_collected_named_job_keeps_its_record_for_other_waiters_and_frees_its_name(launcher, async_dir):
    start = Starts(launcher, source="print('{\"changed\": true}')\n")
    _existing, first, _job = _names.launch_named(async_dir, "twice", "attach", start, grace=1)
    assert launcher.wait(first).state == _record.SUCCEEDED
    # The job was launched without a name by the stand-in: give its record the name the agent would.
    record = _store.read_record(async_dir, first)
    record.name = "twice"
    _store.write_record(async_dir, record)

    _names.collect(async_dir, first)

    # Another controller waiting on the job still gets its end ...
    assert _store.read_record(async_dir, first).state == _record.SUCCEEDED
    assert not any(entry.startswith(f".{first}.") for entry in os.listdir(async_dir))
    # ... and the next launch of the name runs it again, removing the collected record.
    existing, second, _job = _names.launch_named(async_dir, "twice", "attach", start, grace=1)
    assert existing is None
    assert second != first
    assert _store.read_record(async_dir, first) is None


def test_collecting_an_unnamed_job_removes_all_its_files(launcher, async_dir):
    launcher.launch("print('{}')\n", jid="j3.3")
    launcher.wait("j3.3")

    _names.collect(async_dir, "j3.3")

    assert _store.list_jids(async_dir) == []


@pytest.mark.parametrize("mode", ["status", "kill", "output", "cleanup", "list"])
def test_a_name_that_stands_for_nothing_is_not_found_in_every_mode(async_dir, mode):

    single = _agent.serve(StatusRequest(mode=mode, jids=["ghost"], single=True, async_dir=async_dir).to_wire())
    many = _agent.serve(StatusRequest(mode=mode, jids=["ghost", "j8.8"], async_dir=async_dir).to_wire())

    if mode == "cleanup":
        assert single["removed"] == [] and single["not_found"] == ["ghost"]
        assert single["jobs"][0]["job"]["state"] == "not_found"
        assert sorted(many["not_found"]) == ["ghost", "j8.8"]
        return
    assert single["jobs"][0]["ansible_job_id"] == "ghost"
    assert single["jobs"][0]["job"]["state"] == "not_found"
    assert "could not find a job named 'ghost'" in single["jobs"][0]["job"]["msg"]
    assert sorted(entry["ansible_job_id"] for entry in many["jobs"]) == ["ghost", "j8.8"]
    assert not os.path.exists(_names.names_dir(async_dir))
