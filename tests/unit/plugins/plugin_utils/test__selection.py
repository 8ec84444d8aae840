# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import math

import pytest

from ansible_collections.longrun.jobs.plugins.plugin_utils._selection import (
    SelectionError,
    flatten_jobs,
    parse_duration,
    type_name,
)

FIX_HINT = "such as 30m, 12h, 1d or 1w"


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("90", 90),
        ("45s", 45),
        ("30m", 1800),
        ("12h", 43200),
        ("1d", 86400),
        ("1w", 604800),
        ("1d12h", 129600),
        ("1w2d3h4m5s", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("1m30", 90),
        ("1.5h", 5400),
        (" 12 H ", 43200),
        ("0", 0),
        (0, 0),
        (90, 90),
        (2.5, 2.5),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value, problem",
    [
        ("", "'' is not a duration"),
        ("soon", "'soon' is not a duration"),
        ("5x", "'5x' is not a duration"),
        ("h", "'h' is not a duration"),
        ("1h1d", "'1h1d' is not a duration"),
        ("-5", "'-5' is not a duration"),
        ("1e3", "'1e3' is not a duration"),
    ],
)
def test_parse_duration_refuses_text_that_is_not_a_duration(value, problem):
    with pytest.raises(SelectionError) as caught:
        parse_duration(value)
    message = str(caught.value)
    assert message.startswith(f"older_than {problem}")
    assert "use seconds (3600)" in message
    assert FIX_HINT in message


@pytest.mark.parametrize(
    "value, problem",
    [
        (-5, "older_than must be 0 or more seconds, got -5"),
        (-0.5, "older_than must be 0 or more seconds, got -0.5"),
        (True, "not a boolean"),
        (False, "not a boolean"),
        (None, "not null"),
        ([1], "not list"),
        ({"h": 1}, "not dictionary"),
    ],
)
def test_parse_duration_refuses_other_values(value, problem):
    with pytest.raises(SelectionError, match=problem):
        parse_duration(value)


def test_parse_duration_names_the_option():
    with pytest.raises(SelectionError, match="^max_age 'soon' is not a duration"):
        parse_duration("soon", option="max_age")


def test_parse_duration_refuses_nan():
    with pytest.raises(SelectionError, match="older_than"):
        parse_duration(math.nan)


def test_flatten_jobs_of_everything_a_playbook_may_pass():
    single = {"ansible_job_id": "j2.3", "started": 1, "finished": 0}
    loop = {
        "changed": True,
        "results": [
            {"ansible_job_id": "j3.1", "item": "a"},
            {"skipped": True, "item": "b"},
            {"ansible_job_id": "j1.2", "item": "c"},
            {"failed": True, "msg": "could not launch", "item": "d"},
        ],
    }

    jids, skipped = flatten_jobs(["j1.2", single, loop, [["j4"]], "j1.2"])

    assert jids == ["j1.2", "j2.3", "j3.1", "j4"]
    assert skipped == 2


@pytest.mark.parametrize(
    "jobs, expected",
    [
        ({"ansible_job_id": "j5.1"}, (["j5.1"], 0)),
        ({"results": [{"ansible_job_id": "j5.1"}, {"ansible_job_id": "j5.2"}]}, (["j5.1", "j5.2"], 0)),
        ({"skipped": True}, ([], 1)),
        ([], ([], 0)),
        (("j1", "j2"), (["j1", "j2"], 0)),
        ([{"results": "not a list"}], ([], 1)),
        # A single async launch inside a loop-like dict: its own id wins.
        ([{"ansible_job_id": "j1", "results": [{"ansible_job_id": "j2"}]}], (["j1"], 0)),
        # run_parallel entries of jobs that never started carry ansible_job_id: null.
        ([{"ansible_job_id": None, "state": "not_started"}, "j3"], (["j3"], 1)),
    ],
    ids=["one-result", "one-loop", "skipped-only", "empty", "tuple", "results-not-a-list", "id-wins", "null-id"],
)
def test_flatten_jobs_shapes(jobs, expected):
    assert flatten_jobs(jobs) == expected


@pytest.mark.parametrize("jobs", ["j1.2", "j1.2,j1.3", None, 5, True])
def test_flatten_jobs_refuses_a_non_list(jobs):
    with pytest.raises(SelectionError) as caught:
        flatten_jobs(jobs)
    message = str(caught.value)
    assert message.startswith(f"jobs must be a list of job ids or registered results, not {type_name(jobs)}")
    assert 'jobs: "{{ launched }}"' in message


@pytest.mark.parametrize(
    "jobs, where, problem",
    [
        (["j1", "../x"], "jobs[1]: ", "jid '../x' is not a job id"),
        (["j1", ""], "jobs[1]: ", "jid must be a non-empty job id"),
        ([{"ansible_job_id": "/etc/passwd"}], "jobs[0].ansible_job_id: ", "is not a job id"),
        (
            [{"results": [{"ansible_job_id": "j1"}, {"ansible_job_id": "j1/../x"}]}],
            "jobs[0].results[1].ansible_job_id: ",
            "is not a job id",
        ),
        ([["j1", ["j2", "x/1"]]], "jobs[0][1][1]: ", "is not a job id"),
        (["j1", 5], "jobs[1] is not a job id string", "a registered loop result (got integer)"),
        ([None], "jobs[0] is not a job id string", "(got null)"),
        ([{"ansible_job_id": 12}], "jobs[0].ansible_job_id is not a job id string", "(got integer)"),
    ],
    ids=["traversal", "empty", "result", "loop-item", "nested-list", "int", "none", "int-id"],
)
def test_flatten_jobs_names_the_bad_item(jobs, where, problem):
    with pytest.raises(SelectionError) as caught:
        flatten_jobs(jobs)
    message = str(caught.value)
    assert message.startswith(where)
    assert problem in message


def test_flatten_jobs_refuses_absurd_nesting():
    jobs: list = ["j1"]
    for _level in range(20):
        jobs = [jobs]
    with pytest.raises(SelectionError, match="nested too deeply: pass registered results or job ids"):
        flatten_jobs(jobs)


def test_flatten_jobs_does_not_change_its_input():
    loop = {"results": [{"ansible_job_id": "j1"}, {"skipped": True}]}
    jobs = [loop, "j2"]
    flatten_jobs(jobs)
    assert jobs == [{"results": [{"ansible_job_id": "j1"}, {"skipped": True}]}, "j2"]


class _TaggedInt(int):
    """Stands for the tagged subclasses (such as _AnsibleTaggedInt) that ansible-core hands to plugins."""


@pytest.mark.parametrize(
    "value, name",
    [(True, "boolean"), (_TaggedInt(3), "integer"), (1.5, "number"), ("x", "string"), ({}, "dictionary"),
     ([], "list"), ((), "list"), (None, "null"), (object(), "object")],
)
def test_type_name_is_what_users_know(value, name):
    assert type_name(value) == name
