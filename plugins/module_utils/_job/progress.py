# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The progress channel: what a job reports about itself, as JSON lines in its ``.progress`` side file.

The supervisor gives the job the file on descriptor PROGRESS_FD (opened for appending) and names it in
the job's environment; status reads the last complete, valid line of the file's tail.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import stat

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the target agent imports this module on every launch (see _agent/main.py).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

SUFFIX = ".progress"
# The job's descriptor number: below 10, which every POSIX shell can redirect to, and not the 9 of flock's idiom.
PROGRESS_FD = 7
FD_VARIABLE = "LONGRUN_PROGRESS_FD"
FILE_VARIABLE = "LONGRUN_PROGRESS_FILE"
# Only the file's tail is read: a job may write lines for days, a status reads this much.
TAIL_BYTES = 8192
MAX_MSG_CHARS = 256


def job_environment(async_dir: str, jid: str) -> t.Dict[str, str]:
    """The variables that tell the job where to report."""
    return {FD_VARIABLE: str(PROGRESS_FD), FILE_VARIABLE: _store.side_path(async_dir, jid, SUFFIX)}


def parse_line(line: t.Union[bytes, str]) -> t.Optional[t.Dict[str, t.Any]]:
    """One reported line as {percent, msg[, current, total]}, or None when it says nothing usable.

    percent is clamped to 0..100; without it, current/total give it. msg is a string of at most
    MAX_MSG_CHARS characters. Other keys are ignored.
    """
    try:
        report = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(report, dict):
        return None
    progress: t.Dict[str, t.Any] = {"percent": None, "msg": None}
    current, total = _number(report.get("current")), _number(report.get("total"))
    if current is not None:
        progress["current"] = current
    if total is not None:
        progress["total"] = total
    percent = _number(report.get("percent"))
    if percent is None and current is not None and total:
        percent = current * 100.0 / total
    if percent is not None:
        percent = min(100.0, max(0.0, float(percent)))
        progress["percent"] = int(percent) if percent.is_integer() else round(percent, 1)
    msg = report.get("msg")
    if isinstance(msg, str):
        # JSON escapes can spell lone surrogates, which are no UTF-8 text: the controller would refuse the result.
        progress["msg"] = msg[:MAX_MSG_CHARS].encode("utf-8", "replace").decode("utf-8")
    if progress["percent"] is None and progress["msg"] is None:
        return None
    return progress


def _number(value: t.Any) -> t.Optional[t.Union[int, float]]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def last_report(data: bytes, *, starts_mid_line: bool, ended: bool) -> t.Optional[t.Dict[str, t.Any]]:
    """The last valid report among the complete lines of data (a tail of the file).

    A line is complete when a newline ends it; once the job has ended (ended) the last one counts
    without it. The first line of a tail that starts inside the file may be cut, so it never counts.
    """
    lines = data.split(b"\n")
    if not ended or not lines[-1].strip():
        lines.pop()
    if starts_mid_line and lines:
        lines.pop(0)
    for line in reversed(lines):
        if line.strip():
            report = parse_line(line)
            if report is not None:
                return report
    return None


def read_progress(async_dir: str, jid: str, *, ended: bool = False) -> t.Optional[t.Dict[str, t.Any]]:
    """The job's latest progress {percent, msg, updated_at, ...} from its side file, or None.

    The file is the job's own side file in async_dir, a regular file never followed through a symlink,
    nor read when it is a hard link; only its last TAIL_BYTES are read. updated_at is when the job last wrote to it.
    """
    try:
        fd = os.open(_store.side_path(async_dir, jid, SUFFIX), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        # A hard link would be another file's contents, from outside the async dir.
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size == 0:
            return None
        start = max(0, info.st_size - TAIL_BYTES)
        data = os.pread(fd, TAIL_BYTES, start)
    except OSError:
        return None
    finally:
        os.close(fd)
    report = last_report(data, starts_mid_line=start > 0, ended=ended)
    if report is None:
        return None
    report["updated_at"] = _record.format_time(datetime.datetime.fromtimestamp(info.st_mtime, datetime.timezone.utc))
    return report
