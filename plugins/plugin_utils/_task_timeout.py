# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The task's own timeout (the ``timeout`` keyword or TASK_TIMEOUT): waits end before it cuts the action.

Core enforces the task timeout with SIGALRM around the action plugin's ``run()``
and, when it fires, drops whatever the action had learnt, job ids included. Our
waits therefore end a little before it, and the alarm, should it still fire (a
remote command that hangs), is caught where a job id is known.
"""

from __future__ import annotations

import time
import typing as t

# The last remote window must be back before the alarm: a fraction of the timeout, at least a second.
MARGIN_FRACTION = 0.2
MIN_MARGIN = 1.0
MAX_MARGIN = 5.0


def _timeout_error_types() -> t.Tuple[t.Type[BaseException], ...]:
    """The exception the task timeout raises: a BaseException that moved between core versions."""
    found: t.List[t.Type[BaseException]] = []
    try:  # ansible-core 2.19 and later
        from ansible._internal._errors._task_timeout import TaskTimeoutError as internal_error
        found.append(internal_error)
    except ImportError:
        pass
    try:  # ansible-core 2.18
        from ansible.executor.task_executor import TaskTimeoutError as executor_error  # type: ignore[attr-defined]
        found.append(executor_error)
    except ImportError:
        pass
    return tuple(found)


TASK_TIMEOUT_ERRORS = _timeout_error_types()


class TaskDeadline:
    """When a wait of this action must end so that the task timeout does not cut it."""

    def __init__(self, task: t.Any, *, started: t.Optional[float] = None) -> None:
        timeout = getattr(task, "timeout", None)
        self.period: int = timeout if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout > 0 else 0
        started = time.monotonic() if started is None else started
        self._end: t.Optional[float] = None
        if self.period:
            margin = min(MAX_MARGIN, max(MIN_MARGIN, self.period * MARGIN_FRACTION))
            self._end = started + max(0.0, self.period - margin)

    def cap(self, seconds: float) -> float:
        """``seconds``, or what is left before the deadline if that is less."""
        if self._end is None:
            return seconds
        return max(0.0, min(seconds, self._end - time.monotonic()))

    def passed(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def result(self, what: str, how_to_wait: str) -> dict:
        """The keys of a task result for a wait that the task timeout ended: failed, timedout and msg."""
        return {
            "failed": True,
            "timedout": {"period": self.period},
            "msg": (
                f"the task timeout of {self.period} s (the timeout keyword or TASK_TIMEOUT) ended the wait, "
                f"and {what} still running: {how_to_wait}"
            ),
        }


def some_jobs(jids: t.Sequence[str]) -> str:
    """'2 jobs (j1.2, j3.4)': how many, and the first three ids."""
    shown = ", ".join(jids[:3]) + (", ..." if len(jids) > 3 else "")
    return f"{len(jids)} job{'s' if len(jids) != 1 else ''} ({shown})"
