# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The outcome sentences, word for word: users, playbooks and the docs rely on them."""

from __future__ import annotations

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences


@pytest.mark.parametrize(
    "signal, exit_code, problem, expected",
    [
        ("SIGKILL", None, "", "the module process was killed by SIGKILL"),
        (
            None,
            0,
            "Extra data: line 2 column 1 (char 12)",
            "the module printed more JSON after its result (Extra data: line 2 column 1 (char 12)), "
            "as when a broad except swallows exit_json",
        ),
        (None, 2, "No start of json char found", "the module exited with code 2 without returning JSON (No start of json char found)"),
        (None, 0, "No start of json char found", "the module did not return JSON (No start of json char found)"),
        (None, None, "No start of json char found", "the module did not return JSON (No start of json char found)"),
    ],
    ids=["signal", "extra-data", "exit-code", "no-json", "exit-unknown"],
)
def test_crash_cause(signal, exit_code, problem, expected):
    assert _sentences.crash_cause(signal=signal, exit_code=exit_code, problem=problem) == expected


def test_crashed_with_and_without_a_stderr_tail():
    message = _sentences.crashed("j1.1", "the module did not return JSON (x)")
    assert message == "job j1.1 crashed: the module did not return JSON (x)"
    assert _sentences.with_stderr_tail(message, "") == message
    assert _sentences.with_stderr_tail(message, "KeyError: 'a'") == f"{message}; its stderr ends with: KeyError: 'a'"


@pytest.mark.parametrize(
    "style, language, interpreter, expected",
    [
        ("binary", "python", "binary", "cannot run the binary module: Exec format error; build it for the target's platform"),
        (
            "new",
            "python",
            "/usr/bin/python3",
            "cannot start the module with interpreter '/usr/bin/python3': Exec format error; "
            "set ansible_python_interpreter to a working Python",
        ),
        (
            "old",
            "bash",
            "/nonexistent/bash",
            "cannot start the module with interpreter '/nonexistent/bash': Exec format error; "
            "set ansible_bash_interpreter to a working bash",
        ),
    ],
    ids=["binary", "python", "other-language"],
)
def test_start_problem(style, language, interpreter, expected):
    assert (
        _sentences.start_problem(style=style, language=language, interpreter=interpreter, reason="Exec format error")
        == expected
    )


def test_stock_sentences():
    assert _sentences.timed_out_by_stock("123.45") == "job 123.45 timed out (async limit) and was killed by stock async_wrapper"
    assert _sentences.stock_crash_cause("") == "the module did not return JSON"
    assert _sentences.stock_crash_cause("MODULE FAILURE") == "MODULE FAILURE"


def test_result_not_saved():
    assert _sentences.result_not_saved("j1.1", "no space") == "job j1.1 succeeded, but its result could not be saved: no space"
    assert _sentences.also_not_saved("job j1.1 failed: boom", "no space") == (
        "job j1.1 failed: boom; its result could not be saved: no space"
    )


def test_record_kept_and_stock_jobs_not_killable():
    assert _sentences.record_kept("j1.1") == (
        "job j1.1 is still running, so its record was kept: wait for it to end, or use force: true to kill it first"
    )
    assert _sentences.stock_job_not_killable("j1.1") == (
        "job j1.1 was started by stock async and records no process id, so it cannot be killed "
        "safely: launch jobs with longrun.jobs.run to be able to kill them"
    )


def test_escalation_is_said_only_when_sigkill_followed():
    assert _sentences.escalation("SIGTERM", "SIGTERM", 5) == ""
    assert _sentences.escalation("SIGKILL", "SIGKILL", 5) == ""
    assert _sentences.escalation("SIGHUP", "SIGKILL", 0) == ", then SIGKILL after 0 s grace"


def test_sentences_of_jobs_that_waited_for_their_locks():
    assert _sentences.record_kept("j1.1", waiting=True) == (
        "job j1.1 is still waiting for its locks, so its record was kept: wait for it to end, "
        "or use force: true to kill it first"
    )
    assert _sentences.lock_timed_out("j2.2", "the lock 'db' held by job j1.1", 30) == (
        "job j2.2 never started: the lock 'db' held by job j1.1 was not free within 30 s (lock_timeout); "
        "raise lock_timeout, or find the holder with longrun.jobs.async_status mode=list"
    )
    assert _sentences.killed_while_waiting("j2.2", "the lock 'db'") == (
        "job j2.2 was killed on request while it waited for the lock 'db'; it never started"
    )
