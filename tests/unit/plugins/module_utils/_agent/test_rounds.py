# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scheduling rounds of run_parallel on the target, with real launches."""

from __future__ import annotations

import base64
import os
import re
import sys
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._agent import main as _agent
from ansible_collections.longrun.jobs.plugins.module_utils._agent.rounds import run_round
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    LaunchReply,
    LaunchRequest,
    RoundReply,
    RoundRequest,
)


@pytest.fixture
def launch(async_dir, janitor):
    """The agent's real launch, with every supervisor tracked for cleanup."""
    launched: t.List[LaunchReply] = []

    def start(request: LaunchRequest) -> LaunchReply:
        reply = _agent.launch_request(request)
        janitor.track_supervisor(reply.job["pid"])
        launched.append(reply)
        return reply

    start.launched = launched  # type: ignore[attr-defined]
    return start


def item(key: int, source: str, async_dir: str, *, timeout: int = 30) -> t.Tuple[int, LaunchRequest]:
    return (key, LaunchRequest(
        jid=f"j{900 + key}",
        async_dir=async_dir,
        timeout=timeout,
        grace=0,
        interpreter=sys.executable,
        payload=base64.b64encode(source.encode("utf-8")).decode("ascii"),
        style="new",
    ))


QUICK = "import time; time.sleep(0.2); print('{}')"
SLOW = "import time; time.sleep(60)"
FAILING = 'import sys; print(\'{"failed": true, "rc": 3}\'); sys.exit(1)'


def round_(async_dir: str, launch, queue: list, **params: t.Any) -> dict:
    """Serve one round; the reply as it goes on the wire."""
    request = RoundRequest(**dict({"async_dir": async_dir, "queue": queue, "wait": 20}, **params))
    return as_dicts(run_round(request, launch=launch))


def as_dicts(reply: RoundReply) -> dict:
    wire = reply.to_wire()
    wire["launched"] = [{"key": key, "reply": launched} for key, launched in wire["launched"]]
    return wire


def test_round_runs_every_job_within_the_limit(async_dir, launch):
    queue = [item(key, QUICK, async_dir) for key in range(3)]

    reply = round_(async_dir, launch, queue, limit=2)

    assert [entry["key"] for entry in reply["launched"]] == [0, 1, 2]
    assert sorted(entry["job"]["state"] for entry in reply["ended"]) == ["succeeded"] * 3
    assert reply["running"] == []
    assert reply["unlaunched"] == []
    assert reply["changed"] is True
    # The third job only started once one of the first two had ended.
    by_prefix = {entry["ansible_job_id"].split(".")[0]: entry["job"] for entry in reply["ended"]}
    first_end = min(_record.parse_time(by_prefix[prefix]["ended_at"]) for prefix in ("j900", "j901"))
    assert _record.parse_time(by_prefix["j902"]["started_at"]) >= first_end


def test_round_returns_when_a_slot_frees_and_more_jobs_wait_on_the_controller(async_dir, launch):
    reply = round_(async_dir, launch, [item(0, QUICK, async_dir), item(1, SLOW, async_dir)], limit=2, more_queued=True)

    assert [entry["ansible_job_id"][:5] for entry in reply["ended"]] == ["j900."]
    assert [entry["job"]["state"] for entry in reply["running"]] == ["running"]


def test_round_stops_launching_after_a_failure_when_asked(async_dir, launch):
    queue = [item(0, FAILING, async_dir), item(1, QUICK, async_dir), item(2, QUICK, async_dir)]

    reply = round_(async_dir, launch, queue, limit=1, stop_on_failure=True)

    assert [entry["key"] for entry in reply["launched"]] == [0]
    assert reply["ended"][0]["job"]["state"] == "failed"
    assert reply["unlaunched"] == [1, 2]


def test_round_keeps_going_when_a_launch_fails(async_dir, launch):
    key, broken = item(0, QUICK, async_dir)
    reply = round_(async_dir, launch, [(key, broken.replace(timeout=0)), item(1, QUICK, async_dir)])

    first, second = reply["launched"]
    assert first == {"key": 0, "reply": LaunchReply(
        failed=True, msg="the async limit must be 1 to 3153600000 seconds (100 years), got 0"
    ).fields()}
    assert second["reply"]["ansible_job_id"] is not None
    assert [entry["job"]["state"] for entry in reply["ended"]] == ["succeeded"]


def test_round_reports_running_jobs_when_its_time_is_up(async_dir, launch):
    started = time.monotonic()
    reply = round_(async_dir, launch, [item(0, SLOW, async_dir), item(1, SLOW, async_dir)], wait=0.3, limit=1)

    assert time.monotonic() - started < 3
    assert [entry["job"]["state"] for entry in reply["running"]] == ["running"]
    assert reply["unlaunched"] == [1]
    assert reply["ended"] == []


def test_round_picks_up_jobs_launched_by_an_earlier_round(async_dir, launch):
    earlier = round_(async_dir, launch, [item(0, QUICK, async_dir)], wait=0)
    jid = earlier["running"][0]["ansible_job_id"]

    reply = round_(async_dir, launch, [], running=[jid])

    assert reply["launched"] == []
    assert reply["changed"] is False
    assert [entry["ansible_job_id"] for entry in reply["ended"]] == [jid]


def test_only_the_last_round_removes_the_records(async_dir, launch):
    earlier = round_(async_dir, launch, [item(0, QUICK, async_dir)], limit=1, more_queued=True)
    first_jid = earlier["ended"][0]["ansible_job_id"]
    # More jobs were waiting on the controller: the record stays for the final reply or a recovery.
    assert earlier["removed"] is False
    assert os.path.exists(os.path.join(async_dir, first_jid))

    last = round_(async_dir, launch, [item(1, QUICK, async_dir)], limit=1, forget=[first_jid])

    assert last["removed"] is True
    assert os.listdir(async_dir) == []


def test_the_last_round_leaves_the_removal_to_the_caller_when_asked(async_dir, launch):
    after_reply: list = []
    request = RoundRequest(async_dir=async_dir, queue=[item(0, QUICK, async_dir)], wait=20, forget=["j5.5"])

    reply = run_round(request, launch=launch, after_reply=after_reply)

    jid = reply.ended[0].ansible_job_id
    assert reply.removed is True
    assert after_reply == [(async_dir, jid), (async_dir, "j5.5")]
    assert os.path.exists(os.path.join(async_dir, jid))


def test_a_stopped_round_keeps_the_records(async_dir, launch):
    reply = round_(async_dir, launch, [item(0, FAILING, async_dir), item(1, QUICK, async_dir)], limit=1,
                   stop_on_failure=True)

    assert reply["removed"] is False
    assert reply["ended"][0]["ansible_job_id"] in os.listdir(async_dir)


@pytest.mark.parametrize(
    "params, error",
    [
        ({"queue": [{"key": 1}]}, "the round request's queue[0] must be a [key, launch request] pair, got dict"),
        ({"queue": ["j1"]}, "the round request's queue[0] must be a [key, launch request] pair, got str"),
        ({"running": ["../x"]}, "the round request's running[0]: jid '../x' is not a job id"),
    ],
    ids=["no-launch", "not-a-dict", "bad-running-jid"],
)
def test_malformed_rounds_are_refused_before_any_launch(async_dir, launch, params, error):
    message = RoundRequest(async_dir=async_dir, wait=1).to_wire()
    message["params"].update(params)
    with pytest.raises(_agent.AgentError, match=re.escape(error)):
        _agent.serve(message)
    assert launch.launched == []
