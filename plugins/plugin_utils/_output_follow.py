# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Following jobs' output during a wait: each window's reply carries the new lines, shown as they arrive."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job.output_reader import STREAMS
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import JobEntry, StatusRequest
from ansible_collections.longrun.jobs.plugins.plugin_utils._progress import show_progress

# Seconds between two looks at the output while following, unless the option says otherwise.
DEFAULT_FOLLOW_INTERVAL = 3.0
MIN_FOLLOW_INTERVAL = 1.0
# Bytes shown per stream per job per window: beyond, the latest ones, after a line that counts the skipped bytes.
FOLLOW_MAX_BYTES = 16384


class FollowError(ValueError):
    """A follow option out of range; the message names the fix."""


def follow_interval(value: t.Any) -> float:
    """The checked follow_interval option."""
    if value is None:
        return DEFAULT_FOLLOW_INTERVAL
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < MIN_FOLLOW_INTERVAL:
        raise FollowError(
            f"follow_interval must be {MIN_FOLLOW_INTERVAL:.0f} or more seconds, got {value!r}: "
            f"leave it out for {DEFAULT_FOLLOW_INTERVAL:.0f} s between looks at the output"
        )
    return float(value)


class OutputFollower:
    """Offsets of the followed jobs' streams, and the lines each window's reply brings."""

    def __init__(self, host: str, *, interval: float = DEFAULT_FOLLOW_INTERVAL, name_jobs: bool = False) -> None:
        self.host = host
        self.interval = interval
        # Many jobs: each line names its job.
        self.name_jobs = name_jobs
        self.offsets: t.Dict[str, t.Dict[str, int]] = {}

    def request(self, request: StatusRequest) -> StatusRequest:
        """The window's request, asking for the output after what was shown."""
        return request.replace(
            output=True,
            output_keep_up=True,
            output_max_bytes=FOLLOW_MAX_BYTES,
            output_since={jid: dict(streams) for jid, streams in self.offsets.items()},
            output_tail=None,
        )

    def show(self, entries: t.Sequence[JobEntry]) -> None:
        """Show the new lines of every job in the reply, and remember where they end."""
        lines = []
        for entry in entries:
            lines.extend(self.lines(entry))
        if lines:
            show_progress("\n".join(lines))

    def lines(self, entry: JobEntry) -> t.List[str]:
        output = entry.output
        if not isinstance(output, dict) or output.get("hidden"):
            # A no_log job: nothing of its output is shown, not even how much there is.
            return []
        jid = entry.ansible_job_id
        prefix = f"[{self.host}] {jid} " if self.name_jobs else f"[{self.host}] "
        lines = []
        offsets = self.offsets.setdefault(jid, {})
        for stream in STREAMS:
            read = output.get(stream)
            if not isinstance(read, dict):
                continue
            next_offset = read.get("next_offset")
            if isinstance(next_offset, int):
                offsets[stream] = next_offset
            skipped = read.get("skipped") or 0
            if skipped:
                lines.append(f"{prefix}{stream}: … {skipped} bytes skipped")
            text = read.get("text") or ""
            lines.extend(f"{prefix}{stream}: {line}" for line in text.splitlines())
        return lines
