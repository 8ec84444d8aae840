# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import time
import types

import pytest

from ansible_collections.longrun.jobs.plugins.plugin_utils._task_timeout import TASK_TIMEOUT_ERRORS, TaskDeadline


def task(timeout):
    return types.SimpleNamespace(timeout=timeout)


@pytest.mark.parametrize("timeout", [None, 0, False])
def test_without_a_task_timeout_nothing_is_cut(timeout):
    deadline = TaskDeadline(task(timeout))
    assert deadline.period == 0
    assert deadline.cap(3600) == 3600
    assert deadline.passed() is False


@pytest.mark.parametrize(
    "timeout, margin",
    [(2, 1.0), (4, 1.0), (10, 2.0), (60, 5.0)],
)
def test_the_wait_ends_a_margin_before_the_task_timeout(timeout, margin):
    started = time.monotonic()
    deadline = TaskDeadline(task(timeout), started=started)
    assert deadline.cap(3600) == pytest.approx(timeout - margin, abs=0.1)
    assert deadline.cap(0.5) == 0.5
    assert deadline.passed() is False


def test_the_deadline_passes():
    deadline = TaskDeadline(task(2), started=time.monotonic() - 1.5)
    assert deadline.passed() is True
    assert deadline.cap(10) == 0.0
    result = deadline.result("job j1.2 is", "wait for it")
    assert result["failed"] is True
    assert result["timedout"] == {"period": 2}
    assert "task timeout of 2 s" in result["msg"] and "job j1.2 is still running: wait for it" in result["msg"]


def test_the_alarm_of_this_core_is_recognised():
    # The exception core raises for the task timeout, whichever core runs the tests, is among those caught.
    try:
        from ansible._internal._errors._task_timeout import TaskTimeoutError
    except ImportError:
        from ansible.executor.task_executor import TaskTimeoutError
    with pytest.raises(TASK_TIMEOUT_ERRORS):
        raise TaskTimeoutError(1)
