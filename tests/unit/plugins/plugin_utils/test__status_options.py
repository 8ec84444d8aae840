# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""async_status's options, checked together on the controller (moved from the target's status_request)."""

from __future__ import annotations

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._timing import KILL_SETTLE
from ansible_collections.longrun.jobs.plugins.plugin_utils import _specs
from ansible_collections.longrun.jobs.plugins.plugin_utils import _status_options


def request(**params) -> dict:
    """Parameters as the module and the action pass them after argument spec validation."""
    values = {
        "jid": None,
        "jobs": None,
        "mode": "status",
        "wait": 0,
        "return_when": "all",
        "signal": "TERM",
        "grace": 5,
        "states": None,
        "older_than": None,
        "force": False,
    }
    values.update(params)
    return values


@pytest.mark.parametrize(
    "params, message",
    [
        ({"mode": "restart", "jid": "j1"}, "unknown mode 'restart': use one of status, cleanup, kill, list"),
        ({"jid": "j1", "jobs": ["j2"]}, "give either jid or jobs, not both: jid names one job, jobs a list of them"),
        ({"jid": "j1", "states": ["failed"]}, "states is only used with mode=list or mode=cleanup, not mode=status"),
        (
            {"jid": "j1", "mode": "kill", "older_than": "1d"},
            "older_than is only used with mode=list or mode=cleanup, not mode=kill",
        ),
        ({"mode": "list", "force": True}, "force is only used with mode=cleanup, not mode=list"),
        ({"jid": "j1/../x"}, "jid 'j1/../x' is not a job id"),
        ({"jobs": "j1.2"}, "jobs must be a list of job ids or registered results, not string"),
        ({"jobs": ["j1", {"ansible_job_id": "../x"}]}, "jobs[1].ansible_job_id: jid '../x' is not a job id"),
        ({"mode": "list", "older_than": "soon"}, "older_than 'soon' is not a duration"),
        ({"mode": "cleanup", "older_than": -1}, "older_than must be 0 or more seconds, got -1"),
        ({"mode": "list", "states": ["done"]}, "unknown state(s) done in states: use running, waiting, succeeded, failed"),
        ({}, "mode=status needs jid or jobs: pass the registered result of the launch"),
        ({"mode": "kill"}, "mode=kill needs jid or jobs"),
        ({"mode": "cleanup"}, "mode=cleanup needs jid, jobs or a filter: for example older_than: 1d"),
        ({"mode": "cleanup", "force": True}, "mode=cleanup needs jid, jobs or a filter"),
        ({"jid": "j1", "wait": -1}, "wait must be 0 or more seconds, got -1: use wait: 0 to report at once"),
        ({"jid": "j1", "wait": "10"}, "wait must be 0 or more seconds, got '10'"),
        ({"jid": "j1", "wait": True}, "wait must be 0 or more seconds, got True"),
        (
            {"jid": "j1", "mode": "kill", "grace": -2},
            "grace must be 0 or more seconds, got -2: use grace: 0 to send SIGKILL at once",
        ),
        ({"jid": "j1", "return_when": "first"}, "return_when must be all or any, got 'first'"),
        (
            {"jid": "j1", "mode": "kill", "signal": "STOP"},
            "signal must be one of TERM, INT, HUP, QUIT, USR1, USR2, KILL, got 'STOP'",
        ),
    ],
    ids=[
        "mode",
        "jid-and-jobs",
        "states-with-status",
        "older-than-with-kill",
        "force-with-list",
        "bad-jid",
        "jobs-string",
        "bad-item",
        "older-than-text",
        "older-than-negative",
        "unknown-state",
        "status-without-jobs",
        "kill-without-jobs",
        "cleanup-without-selection",
        "force-alone",
        "negative-wait",
        "text-wait",
        "bool-wait",
        "negative-grace",
        "return-when",
        "signal",
    ],
)
def test_parse_request_names_the_problem_and_the_fix(params, message):
    with pytest.raises(_status_options.RequestError) as caught:
        _status_options.parse_request(request(**params))
    assert message in str(caught.value)


def test_parse_request_of_the_stock_form():
    parsed = _status_options.parse_request(request(jid="j1.2", wait=3))
    assert (parsed.mode, parsed.jids, parsed.single, parsed.wait, parsed.ignored) == ("status", ["j1.2"], True, 3.0, 0)


def test_parse_request_of_registered_results():
    loop = {"results": [{"ansible_job_id": "j1"}, {"skipped": True}, {"ansible_job_id": "j2"}]}
    parsed = _status_options.parse_request(request(jobs=[loop, "j3", "j1", {"failed": True}], return_when="any"))
    assert parsed.jids == ["j1", "j2", "j3"]
    assert parsed.single is False
    # The skipped loop item and the launch that failed carry no job id.
    assert parsed.ignored == 2
    assert parsed.return_when == "any"


def test_parse_request_of_a_filter_only_cleanup():
    parsed = _status_options.parse_request(request(mode="cleanup", older_than="1d12h", states=["failed"], force=True))
    assert parsed.jids is None
    assert parsed.older_than == 129600
    assert parsed.states == ["failed"]
    assert parsed.force is True


@pytest.mark.parametrize("grace, wait, expected", [(5, 0, 5 + KILL_SETTLE), (0, 0, KILL_SETTLE), (5, 2, 2)])
def test_kill_waits_for_grace_and_settling_by_default(grace, wait, expected):
    parsed = _status_options.parse_request(request(mode="kill", jid="j1", grace=grace, wait=wait))
    assert parsed.wait == expected
    assert parsed.signal == "TERM"


def test_parse_request_fills_defaults_for_missing_options():
    parsed = _status_options.parse_request({"jid": "j1"})
    assert (parsed.mode, parsed.wait, parsed.grace, parsed.signal, parsed.return_when) == (
        "status",
        0.0,
        _specs.DEFAULT_GRACE,
        "TERM",
        "all",
    )


@pytest.mark.parametrize(
    "since, expected",
    [
        (None, {}),
        (0, {"j1.1": {"stdout": 0, "stderr": 0}, "j2.2": {"stdout": 0, "stderr": 0}}),
        (7, {"j1.1": {"stdout": 7, "stderr": 7}, "j2.2": {"stdout": 7, "stderr": 7}}),
        ({"stdout": 5}, {"j1.1": {"stdout": 5}, "j2.2": {"stdout": 5}}),
        ({"j2.2": {"stdout": 3, "stderr": 4}}, {"j2.2": {"stdout": 3, "stderr": 4}}),
        ({"j1.1": 9}, {"j1.1": {"stdout": 9, "stderr": 9}}),
    ],
)
def test_mode_output_takes_offsets_for_all_jobs_per_stream_or_per_job(since, expected):
    parsed = _status_options.parse_request(request(jobs=["j1.1", "j2.2"], mode="output", since=since))
    assert parsed.mode == "output" and parsed.output is True
    assert parsed.output_since == expected
    assert parsed.output_tail is None
    assert parsed.output_max_bytes == 65536


def test_mode_output_with_tail_and_a_cap():
    parsed = _status_options.parse_request(request(jid="j1.1", mode="output", tail=5, max_bytes=100))
    assert (parsed.output_tail, parsed.output_max_bytes, parsed.output_since) == (5, 100, {})


@pytest.mark.parametrize(
    "params, message",
    [
        ({"since": -1}, "since must be a byte offset of 0 or more, got -1: use 0 to read from the start"),
        ({"since": {"stdout": -5}}, "since.stdout must be a byte offset of 0 or more, got -5"),
        ({"since": "10"}, "since must be a byte offset of 0 or more, got '10'"),
        ({"since": True}, "since must be a byte offset of 0 or more, got True"),
        ({"since": {"stdin": 1}}, "since has unknown key(s) stdin"),
        ({"since": {"j9.9": 1}}, "since names job(s) j9.9 that are not asked about"),
        ({"since": 0, "tail": 3}, "give either since or tail, not both"),
        ({"tail": -1}, "tail must be 0 or more lines, got -1"),
        ({"max_bytes": 0}, "max_bytes must be from 1 to 1048576 bytes per stream, got 0"),
        ({"max_bytes": 2000000}, "max_bytes must be from 1 to 1048576 bytes per stream, got 2000000"),
        ({"wait": 5}, "mode=output reads at once and does not wait"),
    ],
)
def test_bad_output_options_name_the_fix(params, message):
    with pytest.raises(_status_options.RequestError) as caught:
        _status_options.parse_request(request(jid="j1.1", mode="output", **params))
    assert message in str(caught.value)


@pytest.mark.parametrize("option, value", [("since", 0), ("tail", 3), ("max_bytes", 10)])
def test_output_options_belong_to_mode_output(option, value):
    with pytest.raises(_status_options.RequestError, match=f"{option} is only used with mode=output"):
        _status_options.parse_request(request(jid="j1.1", **{option: value}))


def test_mode_output_needs_jobs():
    with pytest.raises(_status_options.RequestError, match="mode=output needs jid or jobs"):
        _status_options.parse_request(request(mode="output"))


def test_parse_follow():
    assert _status_options.parse_follow(request(jid="j1.1", wait=10)) is None
    assert _status_options.parse_follow(request(jid="j1.1", wait=10, follow=True)) == 3.0
    assert _status_options.parse_follow(request(jid="j1.1", wait=10, follow=True, follow_interval=5)) == 5.0


@pytest.mark.parametrize(
    "params, message",
    [
        ({"follow": True}, "follow: true shows the jobs' output while waiting for them: set wait"),
        ({"follow": True, "wait": 5, "follow_interval": 0.2}, "follow_interval must be 1 or more seconds"),
        ({"wait": 5, "follow_interval": 2}, "follow_interval is only used with follow: true"),
    ],
)
def test_bad_follow_options_name_the_fix(params, message):
    with pytest.raises(_status_options.RequestError, match=message):
        _status_options.parse_follow(request(jid="j1.1", **params))


def test_follow_belongs_to_mode_status():
    with pytest.raises(_status_options.RequestError, match="follow is only used with mode=status"):
        _status_options.parse_request(request(jid="j1.1", mode="kill", follow=True))
