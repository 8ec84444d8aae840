# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils import _output_follow
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import FollowError, OutputFollower


@pytest.fixture
def shown(monkeypatch) -> list:
    lines: list = []
    monkeypatch.setattr(_output_follow, "show_progress", lambda text, **_kw: lines.extend(text.split("\n")))
    return lines


def stream(text: str = "", *, next_offset: int = 0, skipped: int = 0) -> dict:
    return {"text": text, "offset": next_offset - len(text.encode()), "next_offset": next_offset, "skipped": skipped}


def entry(jid: str = "j1.1", **output) -> JobEntry:
    return JobEntry(ansible_job_id=jid, job={"state": "running"}, output=output or None)


def test_each_new_line_is_shown_with_host_and_stream(shown):
    follower = OutputFollower("web1")
    follower.show([entry(stdout=stream("one\ntwo\n", next_offset=8), stderr=stream("oops\n", next_offset=5))])
    assert shown == ["[web1] stdout: one", "[web1] stdout: two", "[web1] stderr: oops"]
    assert follower.offsets == {"j1.1": {"stdout": 8, "stderr": 5}}


def test_the_next_request_starts_where_the_shown_lines_end():
    follower = OutputFollower("web1")
    follower.offsets["j1.1"] = {"stdout": 8, "stderr": 5}
    asked = follower.request(StatusRequest(jids=["j1.1"], single=True, remove_ended=True))
    assert asked.output is True
    assert asked.output_keep_up is True
    assert asked.output_since == {"j1.1": {"stdout": 8, "stderr": 5}}
    assert asked.output_max_bytes == _output_follow.FOLLOW_MAX_BYTES
    # The rest of the request is the caller's.
    assert asked.remove_ended is True and asked.single is True


def test_skipped_bytes_are_counted_before_the_latest_lines(shown):
    OutputFollower("web1").show([entry(stdout=stream("last\n", next_offset=90005, skipped=90000))])
    assert shown == ["[web1] stdout: … 90000 bytes skipped", "[web1] stdout: last"]


def test_many_jobs_name_their_job(shown):
    follower = OutputFollower("web1", name_jobs=True)
    follower.show([entry("j1.1", stdout=stream("a\n", next_offset=2)), entry("j2.2", stderr=stream("b\n", next_offset=2))])
    assert shown == ["[web1] j1.1 stdout: a", "[web1] j2.2 stderr: b"]


def test_nothing_is_shown_of_a_hidden_job(shown):
    OutputFollower("web1").show([entry(hidden=True, msg="the output of job j1.1 is hidden by no_log")])
    assert shown == []


def test_a_window_without_new_lines_shows_nothing(shown):
    OutputFollower("web1").show([entry(stdout=stream(next_offset=4)), JobEntry(ansible_job_id="j2.2")])
    assert shown == []


@pytest.mark.parametrize("value, expected", [(None, _output_follow.DEFAULT_FOLLOW_INTERVAL), (1, 1.0), (2.5, 2.5)])
def test_follow_interval(value, expected):
    assert _output_follow.follow_interval(value) == expected


@pytest.mark.parametrize("value", [0, 0.5, -1, True, "3"])
def test_follow_interval_refuses_values_below_a_second(value):
    with pytest.raises(FollowError, match="follow_interval must be 1 or more seconds"):
        _output_follow.follow_interval(value)
