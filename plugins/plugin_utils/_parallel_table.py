# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The summary table that run_parallel shows when jobs did not succeed."""

from __future__ import annotations

import typing as t

_COLUMNS = ("name", "state", "rc", "duration", "message")
_MESSAGE_WIDTH = 100


def _cells(entry: t.Mapping[str, t.Any]) -> t.List[str]:
    duration = entry.get("duration")
    message = " ".join(str(entry.get("msg") or "").split())
    if len(message) > _MESSAGE_WIDTH:
        message = message[: _MESSAGE_WIDTH - 3] + "..."
    return [
        str(entry.get("name")),
        str(entry.get("state")),
        "" if entry.get("rc") is None else str(entry["rc"]),
        f"{duration:.1f} s" if isinstance(duration, (int, float)) else "",
        message,
    ]


def failure_count_line(entries: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    """For example: 2 of 5 jobs did not succeed."""
    failures = sum(1 for entry in entries if entry.get("state") != "succeeded")
    return f"{failures} of {len(entries)} job{'s' if len(entries) != 1 else ''} did not succeed"


def failure_table(entries: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    """A heading line plus one aligned row per job, for example:

    2 of 5 jobs did not succeed:
    NAME      STATE      RC  DURATION  MESSAGE
    frontend  succeeded  0   2.0 s
    backend   failed     3   2.1 s     job j1.2 failed: non-zero return code (rc=3)
    """
    rows = [[column.upper() for column in _COLUMNS]] + [_cells(entry) for entry in entries]
    widths = [max(len(row[index]) for row in rows) for index in range(len(_COLUMNS))]
    lines = [f"{failure_count_line(entries)}:"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return "\n".join(lines)
