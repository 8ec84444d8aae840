# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rolling window of run_parallel on the target, with real launches."""

from __future__ import annotations

import base64
import os
import sys
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._agent.rounds import WindowError, run_window


@pytest.fixture
def launch(async_dir, janitor):
    """The agent's real launch, with every supervisor tracked for cleanup."""
    launched: t.List[dict] = []

    def start(params: t.Mapping[str, t.Any]) -> dict:
        reply = _agent.launch_request(params)
        janitor.track_supervisor(reply["job"]["pid"])
        launched.append(reply)
        return reply

    start.launched = launched  # type: ignore[attr-defined]
    return start


def item(key: int, source: str, async_dir: str, *, timeout: int = 30) -> dict:
    return {
        "key": key,
        "launch": {
            "jid": f"j{900 + key}",
            "async_dir": async_dir,
            "timeout": timeout,
            "grace": 0,
            "interpreter": sys.executable,
            "payload": base64.b64encode(source.encode("utf-8")).decode("ascii"),
            "style": "new",
        },
    }


QUICK = "import time; time.sleep(0.2); print('{}')"
SLOW = "import time; time.sleep(60)"
FAILING = 'import sys; print(\'{"failed": true, "rc": 3}\'); sys.exit(1)'


def window(async_dir: str, launch, queue: list, **params: t.Any) -> dict:
    return run_window(dict({"_async_dir": async_dir, "queue": queue, "wait": 20}, **params), launch=launch)


def test_window_runs_every_job_within_the_limit(async_dir, launch):
    queue = [item(key, QUICK, async_dir) for key in range(3)]

    reply = window(async_dir, launch, queue, limit=2)

    assert [entry["key"] for entry in reply["launched"]] == [0, 1, 2]
    assert sorted(entry["job"]["state"] for entry in reply["ended"]) == ["succeeded"] * 3
    assert reply["running"] == []
    assert reply["unlaunched"] == []
    assert reply["changed"] is True
    # The third job only started once one of the first two had ended.
    by_prefix = {entry["ansible_job_id"].split(".")[0]: entry["job"] for entry in reply["ended"]}
    first_end = min(_record.parse_time(by_prefix[prefix]["ended_at"]) for prefix in ("j900", "j901"))
    assert _record.parse_time(by_prefix["j902"]["started_at"]) >= first_end


def test_window_returns_when_a_slot_frees_and_more_jobs_wait_on_the_controller(async_dir, launch):
    reply = window(async_dir, launch, [item(0, QUICK, async_dir), item(1, SLOW, async_dir)], limit=2, more_queued=True)

    assert [entry["ansible_job_id"][:5] for entry in reply["ended"]] == ["j900."]
    assert [entry["job"]["state"] for entry in reply["running"]] == ["running"]


def test_window_stops_launching_after_a_failure_when_asked(async_dir, launch):
    queue = [item(0, FAILING, async_dir), item(1, QUICK, async_dir), item(2, QUICK, async_dir)]

    reply = window(async_dir, launch, queue, limit=1, stop_on_failure=True)

    assert [entry["key"] for entry in reply["launched"]] == [0]
    assert reply["ended"][0]["job"]["state"] == "failed"
    assert reply["unlaunched"] == [1, 2]


def test_window_keeps_going_when_a_launch_fails(async_dir, launch):
    broken = item(0, QUICK, async_dir)
    broken["launch"]["timeout"] = 0
    reply = window(async_dir, launch, [broken, item(1, QUICK, async_dir)])

    first, second = reply["launched"]
    assert first == {"key": 0, "reply": {"failed": True, "msg": "the async limit must be 1 to 3153600000 seconds (100 years), got 0"}}
    assert "ansible_job_id" in second["reply"]
    assert [entry["job"]["state"] for entry in reply["ended"]] == ["succeeded"]


def test_window_reports_running_jobs_when_its_time_is_up(async_dir, launch):
    started = time.monotonic()
    reply = window(async_dir, launch, [item(0, SLOW, async_dir), item(1, SLOW, async_dir)], wait=0.3, limit=1)

    assert time.monotonic() - started < 3
    assert [entry["job"]["state"] for entry in reply["running"]] == ["running"]
    assert reply["unlaunched"] == [1]
    assert reply["ended"] == []


def test_window_picks_up_jobs_launched_by_an_earlier_window(async_dir, launch):
    earlier = window(async_dir, launch, [item(0, QUICK, async_dir)], wait=0)
    jid = earlier["running"][0]["ansible_job_id"]

    reply = window(async_dir, launch, [], running=[jid])

    assert reply["launched"] == []
    assert reply["changed"] is False
    assert [entry["ansible_job_id"] for entry in reply["ended"]] == [jid]


def test_only_the_last_window_removes_the_records(async_dir, launch):
    earlier = window(async_dir, launch, [item(0, QUICK, async_dir)], limit=1, more_queued=True)
    first_jid = earlier["ended"][0]["ansible_job_id"]
    # More jobs were waiting on the controller: the record stays for the final reply or a recovery.
    assert earlier["removed"] is False
    assert os.path.exists(os.path.join(async_dir, first_jid))

    last = window(async_dir, launch, [item(1, QUICK, async_dir)], limit=1, forget=[first_jid])

    assert last["removed"] is True
    assert os.listdir(async_dir) == []


def test_the_last_window_leaves_the_removal_to_the_caller_when_asked(async_dir, launch):
    after_reply: list = []
    params = {"_async_dir": async_dir, "queue": [item(0, QUICK, async_dir)], "wait": 20, "forget": ["j5.5"]}

    reply = run_window(params, launch=launch, after_reply=after_reply)

    jid = reply["ended"][0]["ansible_job_id"]
    assert reply["removed"] is True
    assert after_reply == [(async_dir, jid), (async_dir, "j5.5")]
    assert os.path.exists(os.path.join(async_dir, jid))


def test_a_stopped_window_keeps_the_records(async_dir, launch):
    reply = window(async_dir, launch, [item(0, FAILING, async_dir), item(1, QUICK, async_dir)], limit=1,
                   stop_on_failure=True)

    assert reply["removed"] is False
    assert reply["ended"][0]["ansible_job_id"] in os.listdir(async_dir)


@pytest.mark.parametrize(
    "params, error",
    [
        ({"queue": [{"key": 1}]}, WindowError),
        ({"queue": ["j1"]}, WindowError),
        ({"running": ["../x"]}, _record.InvalidJid),
    ],
    ids=["no-launch", "not-a-dict", "bad-running-jid"],
)
def test_malformed_windows_are_refused_before_any_launch(async_dir, launch, params, error):
    with pytest.raises(error):
        run_window(dict({"_async_dir": async_dir, "wait": 1}, **params), launch=launch)
    assert launch.launched == []
