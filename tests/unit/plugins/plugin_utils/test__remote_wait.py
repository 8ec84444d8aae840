# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import time
import typing as t

import pytest

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusRequest, decode_reply
from ansible_collections.longrun.jobs.plugins.plugin_utils import _output_follow, _remote_wait
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import OutputFollower
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
    """Answers status requests from a script: a dict is a reply on the wire, an exception is raised.

    Each request is recorded as (op, its fields).
    """

    def __init__(self, script: t.List[t.Any]) -> None:
        self.action = FakeAction()
        self.script = list(script)
        self.requests: t.List[t.Tuple[str, dict]] = []

    def request(self, request: t.Any) -> t.Any:
        self.requests.append((request.op, request.fields()))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return decode_reply(request, step)


def _reply(state: str) -> dict:
    return {"jobs": [{"ansible_job_id": JID, "finished": state != "running", "job": {"state": state}}]}


@pytest.fixture
def no_reconnect_pause(monkeypatch):
    monkeypatch.setattr(_remote_wait, "RECONNECT_PAUSE", 0.0)


def test_call_sends_the_defaults_and_the_async_dir():
    agent = ScriptedAgent([_reply("running")])

    RemoteWaiter(agent, {}, "/async").call(StatusRequest(jids=[JID], single=True))

    assert agent.requests == [("status", StatusRequest(jids=[JID], single=True, async_dir="/async").fields())]
    sent = agent.requests[0][1]
    assert (sent["mode"], sent["wait"], sent["remove_ended"], sent["async_dir"]) == ("status", 0, False, "/async")


def test_call_raises_when_the_agent_fails_without_jobs():
    agent = ScriptedAgent([{"failed": True, "msg": "jid '../x' is not a job id"}])

    with pytest.raises(AnsibleActionFail) as exc_info:
        RemoteWaiter(agent, {}, "/async").call(StatusRequest(jids=["../x"], single=True))

    assert exc_info.value.message == "jid '../x' is not a job id"
    assert exc_info.value.result["failed"] is True


def test_wait_returns_at_once_when_the_job_has_ended():
    agent = ScriptedAgent([_reply("succeeded")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=5, remove_ended=True)

    assert entry.state == "succeeded"
    [(_op, params)] = agent.requests
    assert params["wait"] == 5
    assert params["remove_ended"] is True


def test_wait_polls_window_by_window_until_the_end():
    agent = ScriptedAgent([_reply("running"), _reply("running"), _reply("failed")])

    entry = RemoteWaiter(agent, {"inventory_hostname": "h"}, "/async").wait(JID, seconds=100, window=7)

    assert entry.state == "failed"
    assert [params["wait"] for _op, params in agent.requests] == [7, 7, 7]


@pytest.mark.parametrize("window, expected", [(1000, MAX_WINDOW), (-3, 0.0)])
def test_wait_keeps_the_window_within_bounds(window, expected):
    agent = ScriptedAgent([_reply("succeeded")])

    RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=window)

    assert agent.requests[0][1]["wait"] == expected


def test_wait_of_zero_seconds_asks_once():
    agent = ScriptedAgent([_reply("running")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=0, window=MAX_WINDOW)

    assert entry.finished is False
    assert agent.requests[0][1]["wait"] == 0


def test_wait_retries_lost_connections(no_reconnect_pause):
    agent = ScriptedAgent([AnsibleConnectionFailure("ssh died"), AnsibleConnectionFailure("again"), _reply("succeeded")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=5)

    assert entry.state == "succeeded"
    assert len(agent.requests) == 3
    assert agent.action._connection.closed == 2


def test_wait_gives_up_on_lost_connections_at_the_deadline(no_reconnect_pause):
    agent = ScriptedAgent([AnsibleConnectionFailure("ssh died")])

    with pytest.raises(AnsibleConnectionFailure):
        RemoteWaiter(agent, {}, "/async").wait(JID, seconds=0, window=5)


def _batch(*states: str, durations: t.Sequence[t.Optional[float]] = ()) -> dict:
    jobs = []
    for index, state in enumerate(states):
        job: dict = {"state": state}
        if index < len(durations):
            job["duration"] = durations[index]
        jobs.append({"ansible_job_id": f"j{index}", "finished": state != "running", "job": job})
    return {"jobs": jobs, "_longrun_protocol": 4}


@pytest.fixture
def shown(monkeypatch):
    lines: t.List[str] = []
    monkeypatch.setattr(_remote_wait.display, "display", lambda msg, *args, **kwargs: lines.append(msg))
    return lines


@pytest.fixture
def warned(monkeypatch):
    lines: t.List[str] = []
    monkeypatch.setattr(_remote_wait.display, "warning", lambda msg, *args, **kwargs: lines.append(msg))
    return lines


def test_wait_for_jobs_with_all_waits_until_every_job_ended(shown):
    agent = ScriptedAgent([_batch("succeeded", "running"), _batch("succeeded", "failed")])
    request = StatusRequest(jids=["j0", "j1"], ignored=2, return_when="all")

    reply = RemoteWaiter(agent, {"inventory_hostname": "web1"}, "/async").wait_for_jobs(request, seconds=100, window=9)

    assert [entry.state for entry in reply.jobs] == ["succeeded", "failed"]
    assert [op for op, _params in agent.requests] == ["status", "status"]
    for _op, sent in agent.requests:
        assert sent["mode"] == "status"
        assert sent["wait"] == 9
        assert sent["jids"] == ["j0", "j1"]
        assert sent["ignored"] == 2
        assert sent["return_when"] == "all"
    assert request == StatusRequest(jids=["j0", "j1"], ignored=2, return_when="all")
    assert len(shown) == 1


def test_wait_for_jobs_with_any_returns_at_the_first_end(shown):
    agent = ScriptedAgent([_batch("running", "running"), _batch("running", "succeeded"), _batch("failed", "succeeded")])

    reply = RemoteWaiter(agent, {}, "/async").wait_for_jobs(
        StatusRequest(jids=["j0", "j1"], return_when="any"), seconds=100
    )

    assert [entry.finished for entry in reply.jobs] == [False, True]
    assert len(agent.requests) == 2
    assert agent.requests[0][1]["wait"] == MAX_WINDOW


class LongPollingAgent(ScriptedAgent):
    """Like the target: a request for a running job takes its whole wait."""

    def request(self, request: t.Any) -> t.Any:
        reply = super().request(request)
        time.sleep(request.wait)
        return reply


def test_wait_for_jobs_shortens_the_last_window_to_the_deadline(shown):
    agent = LongPollingAgent([_batch("running")] * 10)

    started = time.monotonic()
    reply = RemoteWaiter(agent, {}, "/async").wait_for_jobs(StatusRequest(jids=["j0"], single=True), seconds=0.5, window=0.2)

    assert time.monotonic() - started == pytest.approx(0.5, abs=0.1)
    assert reply.jobs[0].finished is False
    waits = [params["wait"] for _op, params in agent.requests]
    assert waits[:2] == [0.2, 0.2]
    assert len(waits) == 3
    assert 0 < waits[2] < 0.2


def test_wait_for_jobs_shows_progress_between_windows(shown):
    agent = ScriptedAgent([_batch("running", "succeeded", "running", durations=[12.4, 3, 40.2]), _batch("succeeded")])

    RemoteWaiter(agent, {"inventory_hostname": "db1"}, "/async").wait_for_jobs(StatusRequest(jids=["j0"]), seconds=100)

    (line,) = shown
    assert line.startswith("[db1] longrun: 1/3 jobs finished, 2 running, longest running 40 s (waited ")


def test_wait_for_jobs_retries_a_lost_connection_with_a_warning(no_reconnect_pause, warned, shown):
    agent = ScriptedAgent([AnsibleConnectionFailure("ssh died\nmore detail"), _batch("succeeded", "succeeded")])

    reply = RemoteWaiter(agent, {"inventory_hostname": "web1"}, "/async").wait_for_jobs(
        StatusRequest(jids=["j0", "j1"]), seconds=100
    )

    assert len(reply.jobs) == 2
    assert agent.action._connection.closed == 1
    assert warned == ["longrun: [web1] connection lost, retrying (1) in 0 s while waiting for 2 jobs: ssh died"]
    assert [line.split(" (")[0] for line in shown] == ["[web1] longrun: connection restored after 1 retry"]


class FakeClock:
    """Stands in for the time module of _remote_wait: sleeping only moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: t.List[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_remote_wait, "time", fake)
    return fake


def test_reconnect_pauses_double_up_to_their_cap(clock, warned, shown):
    failures = [AnsibleConnectionFailure(f"refused {n}") for n in range(6)]
    agent = ScriptedAgent(failures + [_reply("succeeded")])

    entry = RemoteWaiter(agent, {}, "/async").wait(JID, seconds=600, window=5)

    assert entry.state == "succeeded"
    assert clock.pauses == [1, 2, 4, 5, 5, 5]
    assert [line.split(" in ")[0] for line in warned] == [
        f"longrun: [?] connection lost, retrying ({n})" for n in range(1, 7)
    ]
    assert agent.action._connection.closed == 6


def test_a_lost_connection_is_retried_until_the_job_limit_plus_the_margin(clock, warned):
    running = {"jobs": [{"ansible_job_id": JID, "finished": False,
                         "job": {"state": "running", "timeout": 100, "duration": 40.0}}], "_longrun_protocol": 4}
    agent = ScriptedAgent([running] + [AnsibleConnectionFailure("refused")] * 100)

    with pytest.raises(AnsibleConnectionFailure) as exc_info:
        RemoteWaiter(agent, {}, "/async").wait(JID, seconds=3600, window=5)

    # The job must have ended 60 s after the first reply, plus the margin: then the wait gives up.
    assert clock.now == pytest.approx(1000 + 60 + _remote_wait.LIMIT_MARGIN)
    message = exc_info.value.message
    assert message.startswith(f"longrun: the connection was lost while waiting for job {JID} and ")
    assert "(refused); jobs keep running on the target" in message
    assert "longrun.jobs.async_status" in message
    assert len(warned) == len(agent.requests) - 2


def test_a_lost_connection_is_retried_until_the_wait_ends(clock, warned):
    agent = ScriptedAgent([AnsibleConnectionFailure("refused")] * 100)

    with pytest.raises(AnsibleConnectionFailure, match="did not restore it"):
        RemoteWaiter(agent, {}, "/async").wait_for_jobs(StatusRequest(jids=["j0", "j1"]), seconds=20)

    assert clock.now == pytest.approx(1020)
    assert clock.pauses == [1, 2, 4, 5, 5, 3]


def test_a_wait_of_zero_seconds_raises_the_connection_error_as_it_is(clock):
    lost = AnsibleConnectionFailure("Failed to connect to the host via ssh")
    agent = ScriptedAgent([lost])

    with pytest.raises(AnsibleConnectionFailure) as exc_info:
        RemoteWaiter(agent, {}, "/async").wait(JID, seconds=0, window=5)

    assert exc_info.value is lost
    assert clock.pauses == []


@pytest.mark.parametrize(
    "entries, expected",
    [
        ([], None),
        ([{"finished": True, "job": {}}], None),
        ([{"finished": False, "job": {"timeout": 30, "duration": 10}},
          {"finished": False, "job": {"timeout": 50, "duration": 45}}], 20 + _remote_wait.LIMIT_MARGIN),
        ([{"finished": False, "job": {"timeout": 30, "duration": 40}}], _remote_wait.LIMIT_MARGIN),
        ([{"finished": False, "job": {"timeout": 30, "duration": 1}}, {"finished": False, "job": {}}], None),
        ([{"finished": False, "job": {"timeout": 30, "duration": 1}},
          {"finished": False, "job": {"state": "waiting", "timeout": 30, "duration": 40}}], None),
    ],
    ids=["nothing", "all-ended", "latest-of-two", "overdue", "stock-job", "waiting-for-locks"],
)
def test_latest_end(clock, entries, expected):
    end = _remote_wait.latest_end([JobEntry(**dict({"ansible_job_id": "j1"}, **entry)) for entry in entries])
    assert end == (None if expected is None else pytest.approx(clock.now + expected))


def test_wait_for_jobs_does_not_retry_a_refused_request():
    agent = ScriptedAgent([{"failed": True, "msg": "jobs[0]: jid '../x' is not a job id"}, _batch("succeeded")])

    with pytest.raises(AnsibleActionFail, match="is not a job id"):
        RemoteWaiter(agent, {}, "/async").wait_for_jobs(StatusRequest(jids=["../x"]), seconds=100)
    assert len(agent.requests) == 1


@pytest.mark.parametrize(
    "entries, line",
    [
        (_batch("running", durations=[61.6])["jobs"], "job j0 is running, running for 62 s"),
        (_batch("running")["jobs"], "job j0 is running"),
        (_batch("succeeded", durations=[5])["jobs"], "job j0 is succeeded"),
        (
            _batch("running", "failed", "running", durations=[1, 99, 7.2])["jobs"],
            "1/3 jobs finished, 2 running, longest running 7 s",
        ),
        (_batch("running", "running")["jobs"], "0/2 jobs finished, 2 running, longest running unknown"),
    ],
    ids=["one-running", "one-no-duration", "one-ended", "many", "many-no-duration"],
)
def test_progress_line(entries, line):
    assert _remote_wait.progress_line([JobEntry.from_fields(entry) for entry in entries]) == line


@pytest.mark.parametrize(
    "progress, line",
    [
        ({"percent": 40, "msg": "copied 4/10"}, "job j0 is running, running for 3 s: 40% copied 4/10"),
        ({"percent": 12.5, "msg": None}, "job j0 is running, running for 3 s: 12.5%"),
        ({"percent": None, "msg": "two\nlines"}, "job j0 is running, running for 3 s: two lines"),
        ({"percent": 40, "msg": "hidden by no_log"}, "job j0 is running, running for 3 s: 40% hidden by no_log"),
        ({"percent": None, "msg": ""}, "job j0 is running, running for 3 s"),
        (None, "job j0 is running, running for 3 s"),
    ],
    ids=["both", "percent", "msg-one-line", "no-log", "nothing", "no-progress"],
)
def test_the_progress_line_shows_what_the_job_reported(progress, line):
    entries = _batch("running", durations=[3])["jobs"]
    if progress is not None:
        entries[0]["job"]["progress"] = progress
    assert _remote_wait.progress_line([JobEntry.from_fields(entry) for entry in entries]) == line


@pytest.mark.parametrize("task_no_log, msg", [(False, "copied 4/10"), (True, "hidden by no_log")])
def test_the_waiting_line_of_a_no_log_task_hides_the_jobs_message(shown, task_no_log, msg):
    running = _batch("running", durations=[3])
    running["jobs"][0]["job"]["progress"] = {"percent": 40, "msg": "copied 4/10", "updated_at": None}
    agent = ScriptedAgent([running, _batch("succeeded")])
    agent.action._play_context = PlayContext()  # pylint: disable=protected-access
    agent.action._play_context.no_log = task_no_log  # pylint: disable=protected-access

    RemoteWaiter(agent, {"inventory_hostname": "db1"}, "/async").wait("j0", seconds=100, window=1)

    (line,) = shown
    assert line.startswith(f"[db1] longrun: job j0 is running, running for 3 s: 40% {msg} (waited ")


def _followed_reply(state: str, text: str, next_offset: int) -> dict:
    reply = _reply(state)
    reply["jobs"][0]["output"] = {
        "stdout": {"text": text, "next_offset": next_offset, "skipped": 0},
        "stderr": {"text": "", "next_offset": 0, "skipped": 0},
    }
    return reply


def test_a_followed_wait_is_one_request_per_short_window_and_shows_the_lines(monkeypatch):
    shown: t.List[str] = []
    monkeypatch.setattr(_output_follow, "show_progress", lambda text, **_kw: shown.append(text))
    agent = ScriptedAgent([
        _followed_reply("running", "one\n", 4),
        _followed_reply("running", "two\n", 8),
        _followed_reply("succeeded", "three\n", 14),
    ])
    follower = OutputFollower("h", interval=2)

    entry = RemoteWaiter(agent, {"inventory_hostname": "h"}, "/async").wait(
        JID, seconds=100, window=30, remove_ended=True, follower=follower
    )

    # One request per window, each at most the follow interval, each from where the last lines ended.
    assert [params["wait"] for _op, params in agent.requests] == [2, 2, 2]
    assert [params["output_since"] for _op, params in agent.requests] == [
        {}, {JID: {"stdout": 4, "stderr": 0}}, {JID: {"stdout": 8, "stderr": 0}}
    ]
    assert all(params["output"] and params["output_keep_up"] for _op, params in agent.requests)
    assert all(params["remove_ended"] for _op, params in agent.requests)
    assert shown == ["[h] stdout: one", "[h] stdout: two", "[h] stdout: three"]
    # The caller gets the entry of an unfollowed wait.
    assert entry.output is None
    assert entry.state == "succeeded"


def test_an_unfollowed_wait_asks_for_no_output():
    agent = ScriptedAgent([_reply("running"), _reply("succeeded")])

    RemoteWaiter(agent, {}, "/async").wait(JID, seconds=100, window=5)

    assert [params["output"] for _op, params in agent.requests] == [False, False]
    assert [params["wait"] for _op, params in agent.requests] == [5, 5]


def test_a_followed_wait_shows_the_progress_line_at_the_pace_of_the_window(monkeypatch):
    progress: t.List[str] = []
    monkeypatch.setattr(_remote_wait, "show_progress", lambda text, **_kw: progress.append(text))
    monkeypatch.setattr(_output_follow, "show_progress", lambda text, **_kw: None)
    clock = [0.0]
    monkeypatch.setattr(_remote_wait.time, "monotonic", lambda: clock[0])

    class TickingAgent(ScriptedAgent):
        def request(self, request: t.Any) -> t.Any:
            clock[0] += request.wait
            return super().request(request)

    agent = TickingAgent([_followed_reply("running", "", 0)] * 6 + [_followed_reply("succeeded", "", 0)])
    RemoteWaiter(agent, {"inventory_hostname": "h"}, "/async").wait(
        JID, seconds=100, window=6, follower=OutputFollower("h", interval=2)
    )

    # Seven windows of 2 s; the progress line every 6 s, as without follow.
    assert len(agent.requests) == 7
    assert len(progress) == 2


def _waiting(jid: str, waiting_for: t.Optional[dict]) -> JobEntry:
    job: dict = {"state": "waiting", "duration": 4}
    if waiting_for is not None:
        job["waiting_for"] = waiting_for
    return JobEntry(ansible_job_id=jid, finished=False, failed=False, job=job)


@pytest.mark.parametrize(
    "waiting_for, line",
    [
        ({"lock": "db", "holder": "j7.7", "holder_pid": 7}, "job j1 is waiting for lock db (held by job j7.7)"),
        ({"lock": "dpkg", "holder": None, "holder_pid": 99}, "job j1 is waiting for lock dpkg (held by process 99)"),
        ({"lock": "db", "holder": None, "holder_pid": None}, "job j1 is waiting for lock db"),
        (None, "job j1 is waiting for its locks"),
    ],
)
def test_progress_line_of_a_job_waiting_for_a_lock(waiting_for, line):
    assert _remote_wait.progress_line([_waiting("j1", waiting_for)]) == line


def test_progress_line_counts_waiting_jobs_apart():
    entries = [_waiting("j1", None), JobEntry.from_fields(_batch("running", durations=[3])["jobs"][0])]
    assert _remote_wait.progress_line(entries) == (
        "0/2 jobs finished, 1 running, 1 waiting for locks, longest running 4 s"
    )


def _wait_as_orphan(report_fd: int) -> None:
    """In a child whose own parent dies before the second window: what the wait raised, written to report_fd."""
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:
        os.close(read_fd)
        agent = ScriptedAgent([_reply("running"), _reply("running")])
        waiter = RemoteWaiter(agent, {"inventory_hostname": "web1"}, "/async")
        os.write(write_fd, b"x")
        # The parent (the stand-in for ansible-playbook) exits now; wait until this process is its orphan.
        deadline = time.monotonic() + 10
        while os.getppid() == waiter.controller_pid and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            waiter.wait(JID, seconds=100, window=0)
            outcome = "no error"
        except _remote_wait.ControllerGone as exc:
            outcome = f"{len(agent.requests)} requests: {exc.message}"
        os.write(report_fd, outcome.encode())
        os._exit(0)
    os.close(write_fd)
    os.read(read_fd, 1)
    os._exit(0)


def test_an_orphaned_worker_stops_waiting():
    """ansible-core's workers outlive a SIGKILL of ansible-playbook: their waits must end, renewing nothing."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            _wait_as_orphan(write_fd)
        finally:
            os._exit(1)
    os.close(write_fd)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    outcome = b"".join(chunks).decode()
    assert outcome.startswith("0 requests: longrun: [web1] the controller process (pid "), outcome
    assert "is gone, so this wait stopped; the job goes on, unless it was launched with on_controller_loss: kill" \
        in outcome


def test_a_waiter_of_a_living_controller_waits():
    agent = ScriptedAgent([_reply("running"), _reply("succeeded")])
    waiter = RemoteWaiter(agent, {}, "/async")
    waiter.check_controller()
    assert waiter.wait(JID, seconds=100, window=0.01).state == "succeeded"
