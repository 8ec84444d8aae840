# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import typing as t

import pytest

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.longrun.jobs.plugins.plugin_utils import _remote_wait
from ansible_collections.longrun.jobs.plugins.plugin_utils._remote_wait import MAX_WINDOW, RemoteWaiter

JID = "j5.6"


class FakeConnection:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class FakeAction:
    def __init__(self) -> None:
        self._connection = FakeConnection()


class ScriptedAgent:
    """Answers status requests from a script: a dict is a reply, an exception is raised."""

    def __init__(self, script: t.List[t.Any]) -> None:
        self.action = FakeAction()
        self.script = list(script)
        self.requests: t.List[t.Tuple[str, dict]] = []

    def request(self, operation: str, params: dict) -> dict:
        self.requests.append((operation, params))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


def _reply(state: str) -> dict:
    return {"jobs": [{"ansible_job_id": JID, "finished": state != "running", "job": {"state": state}}]}


@pytest.fixture
def no_reconnect_pause(monkeypatch):
    monkeypatch.setattr(_remote_wait, "RECONNECT_PAUSE", 0.0)


def test_call_sends_the_defaults_and_the_async_dir():
    agent = ScriptedAgent([_reply("running")])

    RemoteWaiter(agent, {}, "/async").call({"jid": JID})

    assert agent.requests == [
        ("status", {"mode": "status", "wait": 0, "_remove_ended": False, "_async_dir": "/async", "jid": JID})
    ]


def test_call_raises_when_the_agent_fails_without_jobs():
    agent = ScriptedAgent([{"failed": True, "msg": "jid '../x' is not a job id"}])

    with pytest.raises(AnsibleActionFail) as exc_info:
        RemoteWaiter(agent, {}, "/async").call({"jid": "../x"})

    assert exc_info.value.message == "jid '../x' is not a job id"
    assert exc_info.value.result["failed"] is True


def test_wait_returns_at_once_when_the_job_has_ended():
    agent = ScriptedAgent([_reply("succeeded")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=5, remove_ended=True)

    assert entry["job"]["state"] == "succeeded"
    [(_op, params)] = agent.requests
    assert params["wait"] == 5
    assert params["_remove_ended"] is True


def test_wait_polls_window_by_window_until_the_end():
    agent = ScriptedAgent([_reply("running"), _reply("running"), _reply("failed")])

    entry = RemoteWaiter(agent, {"inventory_hostname": "h"}, "/async").wait(JID, seconds=100, window=7)

    assert entry["job"]["state"] == "failed"
    assert [params["wait"] for _op, params in agent.requests] == [7, 7, 7]


@pytest.mark.parametrize("window, expected", [(1000, MAX_WINDOW), (-3, 0.0)])
def test_wait_keeps_the_window_within_bounds(window, expected):
    agent = ScriptedAgent([_reply("succeeded")])

    RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=window)

    assert agent.requests[0][1]["wait"] == expected


def test_wait_of_zero_seconds_asks_once():
    agent = ScriptedAgent([_reply("running")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=0, window=MAX_WINDOW)

    assert entry["finished"] is False
    assert agent.requests[0][1]["wait"] == 0


def test_wait_retries_lost_connections(no_reconnect_pause):
    agent = ScriptedAgent([AnsibleConnectionFailure("ssh died"), AnsibleConnectionFailure("again"), _reply("succeeded")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=5)

    assert entry["job"]["state"] == "succeeded"
    assert len(agent.requests) == 3
    assert agent.action._connection.closed == 2


def test_wait_gives_up_on_lost_connections_at_the_deadline(no_reconnect_pause):
    agent = ScriptedAgent([AnsibleConnectionFailure("ssh died")])

    with pytest.raises(AnsibleConnectionFailure):
        RemoteWaiter(agent, {}, "/async").wait(JID, seconds=0, window=5)
