# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""longrun.jobs.run_parallel with a real local connection and real jobs."""

from __future__ import annotations

import os
import random
import signal
import time
import typing as t

import pytest

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.longrun.jobs.plugins.action.run_parallel import ActionModule as RunParallelAction
from ansible_collections.longrun.jobs.plugins.action.run_parallel import _default_name
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.plugin_utils import _remote_wait

pytestmark = pytest.mark.usefixtures("collection_loader")

ACTION = "longrun.jobs.run_parallel"


@pytest.fixture
def run_parallel(make_action, task_vars):
    def run(args: dict) -> dict:
        return make_action(RunParallelAction, ACTION, args).run(task_vars=task_vars)

    return run


def _pids_running(argv: t.List[str]) -> t.List[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().split(b"\0")[:-1]
        except OSError:
            continue
        if cmdline == [part.encode() for part in argv]:
            found.append(int(entry))
    return found


@pytest.fixture
def long_sleep() -> t.Iterator[str]:
    """A sleep command with a duration no other process uses; afterwards none of them may be left."""
    seconds = f"30.{random.randint(100000, 999999)}"
    yield f"sleep {seconds}"
    left = _pids_running(["sleep", seconds])
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"run_parallel left sleep {seconds} running"


def _by_name(result: dict) -> t.Dict[str, dict]:
    return {entry["name"]: entry for entry in result["results"]}


def _overlap(entries: t.Sequence[dict]) -> int:
    """The largest number of jobs running at the same moment, from their recorded start and end."""
    spans = [(_record.parse_time(entry["started_at"]), _record.parse_time(entry["ended_at"])) for entry in entries]
    return max(sum(1 for start, end in spans if start <= moment < end) for moment, _end in spans)


def test_limit_caps_the_jobs_running_at_once(run_parallel, remote_commands, async_dir):
    jobs = [{"name": f"nap{n}", "ansible.builtin.command": "sleep 0.3"} for n in range(4)]

    result = run_parallel({"jobs": jobs, "limit": 2})

    assert result.get("failed") is not True, result["msg"]
    assert result["msg"] == "4 jobs succeeded"
    assert result["changed"] is True
    assert [entry["name"] for entry in result["results"]] == ["nap0", "nap1", "nap2", "nap3"]
    assert {entry["state"] for entry in result["results"]} == {"succeeded"}
    assert result["summary"]["succeeded"] == result["summary"]["total"] == 4
    assert _overlap(result["results"]) == 2
    # The target refills the window itself and removes the records at the end: one remote command for all of it.
    assert len(remote_commands.calls) == 1
    assert os.listdir(async_dir) == []


def test_failures_are_reported_in_a_table_and_do_not_stop_the_others(run_parallel):
    jobs = [
        {"name": "broken", "ansible.builtin.shell": "exit 3"},
        {"name": "fine", "ansible.builtin.command": "echo ok"},
    ]

    result = run_parallel({"jobs": jobs, "limit": 1})

    assert result["failed"] is True
    broken, fine = result["results"]
    assert (broken["state"], broken["rc"]) == ("failed", 3)
    assert (fine["state"], fine["result"]["stdout"]) == ("succeeded", "ok")
    heading, header, first, second = result["msg"].splitlines()
    assert heading == "1 of 2 jobs did not succeed:"
    assert header.split() == ["NAME", "STATE", "RC", "DURATION", "MESSAGE"]
    assert first.split()[:3] == ["broken", "failed", "3"]
    assert first.endswith(f"job {broken['ansible_job_id']} failed: non-zero return code (rc=3)")
    assert second.split()[:3] == ["fine", "succeeded", "0"]


def test_fail_fast_kills_the_running_and_skips_the_rest(run_parallel, long_sleep, async_dir):
    jobs = [
        {"name": "long", "ansible.builtin.command": long_sleep},
        {"name": "broken", "ansible.builtin.shell": "sleep 0.2; exit 3"},
        {"name": "later", "ansible.builtin.command": "true"},
    ]

    started = time.monotonic()
    result = run_parallel({"jobs": jobs, "limit": 2, "fail_fast": True, "grace": 1})

    assert time.monotonic() - started < 10
    assert result["failed"] is True
    by_name = _by_name(result)
    assert by_name["broken"]["state"] == "failed"
    assert by_name["long"]["state"] == "killed"
    assert by_name["long"]["msg"].startswith("broken ended failed and fail_fast is set: job ")
    assert by_name["later"]["state"] == "not_started"
    assert by_name["later"]["ansible_job_id"] is None
    assert by_name["later"]["msg"] == "later was not started: broken ended failed and fail_fast is set"
    assert result["summary"]["not_started"] == 1
    assert result["msg"].splitlines()[0] == "3 of 3 jobs did not succeed:"
    assert os.listdir(async_dir) == []


def test_the_overall_wait_kills_what_still_runs(run_parallel, long_sleep):
    jobs = [
        {"name": "first", "ansible.builtin.command": long_sleep},
        {"name": "second", "ansible.builtin.command": "true"},
    ]

    started = time.monotonic()
    result = run_parallel({"jobs": jobs, "limit": 1, "wait": 1, "grace": 0})

    assert time.monotonic() - started < 8
    first, second = result["results"]
    assert first["state"] == "killed"
    assert first["msg"].startswith("the overall limit of 1 s (parallel_wait, or wait) passed: job ")
    assert second["state"] == "not_started"
    assert second["msg"] == "second was not started: the overall limit of 1 s (parallel_wait, or wait) passed"


def test_a_job_may_bring_its_own_async_limit(run_parallel, long_sleep):
    jobs = [
        {"name": "bounded", "ansible.builtin.command": long_sleep, "async": 1, "grace": 0},
        {"name": "text-limit", "ansible.builtin.command": "true", "async": "7"},
        {"name": "default", "ansible.builtin.command": "true"},
    ]

    result = run_parallel({"jobs": jobs, "timeout": 100})

    by_name = _by_name(result)
    assert (by_name["bounded"]["state"], by_name["bounded"]["timeout"]) == ("timed_out", 1)
    assert "timed out after 1 s (async limit)" in by_name["bounded"]["msg"]
    assert (by_name["text-limit"]["state"], by_name["text-limit"]["timeout"]) == ("succeeded", 7)
    assert (by_name["default"]["state"], by_name["default"]["timeout"]) == ("succeeded", 100)


def test_without_a_limit_all_jobs_start_at_once_named_after_their_command(run_parallel):
    jobs = [{"ansible.builtin.command": "sh -c 'sleep 0.3' " + "x" * 80}, {"ansible.builtin.command": "sleep 0.3"}]

    result = run_parallel({"jobs": jobs})

    first, second = result["results"]
    assert _overlap(result["results"]) == 2
    assert first["name"] == "command: sh -c 'sleep 0.3' " + "x" * 30 + "..."
    assert len(first["name"]) == 60
    assert second["name"] == "command: sleep 0.3"


def test_detach_launches_every_job_and_returns_at_once(run_parallel, long_sleep, async_dir, remote_commands):
    jobs = [
        {"name": "long", "ansible.builtin.command": long_sleep},
        {"name": "other", "ansible.builtin.command": long_sleep, "async": 40},
    ]

    started = time.monotonic()
    result = run_parallel({"jobs": jobs, "detach": True, "timeout": 30, "grace": 0})

    assert time.monotonic() - started < 10
    assert result.get("failed") is not True, result["msg"]
    assert result["msg"] == "launched 2 jobs; wait for them with longrun.jobs.async_status and jobs: set to this result"
    long, other = result["results"]
    assert (long["name"], long["state"], long["finished"], long["timeout"]) == ("long", "running", False, 30)
    assert (other["state"], other["timeout"]) == ("running", 40)
    assert result["summary"]["running"] == 2
    # The records stay for async_status; one launch window plus one status request.
    records = sorted(name for name in os.listdir(async_dir) if not name.startswith("."))
    assert records == sorted([long["ansible_job_id"], other["ansible_job_id"]])
    assert len(remote_commands.calls) == 2
    _kill_and_wait(async_dir, [long["ansible_job_id"], other["ansible_job_id"]])


def _kill_and_wait(async_dir: str, jids: t.List[str]) -> None:
    """End detached jobs through their supervisors (a kill request) and wait for their ended records."""
    for jid in jids:
        os.kill(_store.read_record(async_dir, jid).pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(_store.read_record(async_dir, jid).state == _record.RUNNING for jid in jids):
        assert time.monotonic() < deadline, "the detached jobs did not end after a kill request"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"limit": 1}, "detach launches every job at once, so limit must be 0 or at least the number of jobs (2), got 1"),
        ({"wait": 5}, "wait does not apply with detach, which returns once the jobs are launched"),
        ({"fail_fast": True}, "fail_fast does not apply with detach, which returns once the jobs are launched"),
    ],
    ids=["limit", "wait", "fail_fast"],
)
def test_detach_refuses_options_it_cannot_honour(run_parallel, async_dir, extra, message):
    jobs = [{"ansible.builtin.command": "true"}, {"ansible.builtin.command": "true"}]

    result = run_parallel(dict({"jobs": jobs, "detach": True}, **extra))

    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert not os.path.exists(async_dir) or os.listdir(async_dir) == []


def test_a_window_lost_with_the_connection_is_retried_and_recovered(make_action, task_vars, monkeypatch, async_dir):
    monkeypatch.setattr(_remote_wait, "RECONNECT_PAUSE", 0.0)
    warnings: t.List[str] = []
    monkeypatch.setattr(_remote_wait.display, "warning", lambda msg, *args, **kwargs: warnings.append(msg))
    action = make_action(RunParallelAction, ACTION, {"jobs": [{"name": n, "ansible.builtin.command": "true"}
                                                              for n in ("a", "b")]})
    run_command = action._low_level_execute_command
    calls = []

    def flaky(cmd, *args, **kwargs):
        calls.append(cmd)
        if len(calls) == 1:
            # The target serves the window, then the reply is lost with the connection.
            run_command(cmd, *args, **kwargs)
            raise AnsibleConnectionFailure("Shared connection to target closed.")
        if len(calls) in (2, 3):
            raise AnsibleConnectionFailure("ssh: connect to host target port 22: Connection refused")
        return run_command(cmd, *args, **kwargs)

    action._low_level_execute_command = flaky

    result = action.run(task_vars=task_vars)

    assert result.get("failed") is not True, result["msg"]
    assert [(entry["name"], entry["state"]) for entry in result["results"]] == [("a", "succeeded"), ("b", "succeeded")]
    assert [line.split(" in ")[0] for line in warnings] == [
        f"longrun: [{task_vars.get('inventory_hostname', '?')}] connection lost, retrying ({n})" for n in (1, 2, 3)
    ]
    assert os.listdir(async_dir) == []


def test_a_shell_job_is_named_after_shell(run_parallel):
    result = run_parallel({"jobs": [{"ansible.builtin.shell": "true"}]})
    assert result["results"][0]["name"] == "shell: true"


@pytest.mark.parametrize(
    "jobs, message",
    [
        (["echo hi"], "job 2 must be a dictionary such as {name: build, ansible.builtin.command: make}, not string"),
        (
            [{"ansible.builtin.command": "true", "ansible.builtin.ping": {}}],
            "job 2: more than one module was given (ansible.builtin.command, ansible.builtin.ping): each job takes "
            "a name, async, exactly one module",
        ),
        (
            [{"name": "typo", "ansible.builtin.comand": "true"}],
            "job 2 (typo): unknown module 'ansible.builtin.comand': check its name and that its collection is installed",
        ),
        ([{"ansible.builtin.command": "true", "async": 0}], "job 2: async must be 1 or more seconds, got 0"),
        ([{"ansible.builtin.command": "true", "async": "soon"}], "job 2: async must be 1 or more seconds, got 'soon'"),
        ([{"ansible.builtin.command": "true", "grace": -1}], "job 2: grace must be 0 or more seconds, got -1"),
        ([{"name": "", "ansible.builtin.command": "true"}], "job 2: name must be a non-empty string"),
        ([{"name": "only a name"}], "job 2 (only a name): no module to run was given"),
        (
            [{"ansible.builtin.copy": {"src": "a", "dest": "b"}}],
            "job 2: ansible.builtin.copy works through a controller-side action plugin",
        ),
    ],
    ids=[
        "not-a-dict",
        "two-modules",
        "unknown-module",
        "async-0",
        "async-text",
        "negative-grace",
        "empty-name",
        "no-module",
        "action-plugin",
    ],
)
def test_bad_jobs_fail_before_anything_is_launched(run_parallel, remote_commands, async_dir, jobs, message):
    result = run_parallel({"jobs": [{"name": "good", "ansible.builtin.command": "true"}, *jobs]})

    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert "\n" not in result["msg"]
    assert remote_commands.calls == []
    assert not os.path.exists(async_dir)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"limit": -1}, "limit must be 0 or more, got -1: use 0 for no limit"),
        ({"timeout": 0}, "timeout must be 1 or more, got 0: it is the per-job async limit in seconds"),
        ({"wait": -5}, "wait must be 0 or more, got -5: use 0 for no overall limit"),
        ({"grace": -1}, "grace must be 0 or more, got -1: use 0 to send SIGKILL at once"),
        ({"fail_fast": "maybe"}, "fail_fast"),
    ],
)
def test_bad_options_fail_before_anything_is_launched(run_parallel, remote_commands, args, message):
    result = run_parallel(dict({"jobs": [{"ansible.builtin.command": "true"}]}, **args))

    assert result["failed"] is True
    assert message in result["msg"]
    assert remote_commands.calls == []


def test_without_jobs_the_task_fails(run_parallel, remote_commands):
    result = run_parallel({"limit": 1})

    assert result["failed"] is True
    assert "missing required arguments: jobs" in result["msg"]
    assert remote_commands.calls == []


def test_the_default_name_of_a_job_skips_its_run_options():
    job = {"lock": ["db"], "lock_timeout": 5, "grace": 1, "ansible.builtin.command": "make all"}
    assert _default_name(job) == "command: make all"
