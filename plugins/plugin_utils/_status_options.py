# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""async_status's options, checked together once on the controller and turned into a status request."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import output_reader as _output_reader
from ansible_collections.longrun.jobs.plugins.module_utils._job.record import InvalidJid, is_jid, validate_job_ref
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import StatusRequest
from ansible_collections.longrun.jobs.plugins.module_utils._timing import DEFAULT_GRACE, KILL_SETTLE
from ansible_collections.longrun.jobs.plugins.plugin_utils import _selection, _specs
from ansible_collections.longrun.jobs.plugins.plugin_utils._output_follow import FollowError, follow_interval

# Options that only some modes use; anything else given to them is a mistake worth naming.
_MODE_OPTIONS = {
    "states": ("list", "cleanup"),
    "older_than": ("list", "cleanup"),
    "force": ("cleanup",),
    "since": ("output",),
    "tail": ("output",),
    "max_bytes": ("output",),
    "follow": ("status",),
    "follow_interval": ("status",),
}


class RequestError(Exception):
    """Options that do not go together; the message names the problem and the fix."""


def parse_request(params: t.Mapping[str, t.Any]) -> StatusRequest:
    """Check the options together and select the jobs; raises RequestError.

    The request's async_dir, check_mode and remove flags are the caller's to set.
    """
    mode = params.get("mode") or "status"
    if mode not in _specs.STATUS_MODES:
        raise RequestError(f"unknown mode {mode!r}: use one of {', '.join(_specs.STATUS_MODES)}")
    jid, jobs = params.get("jid"), params.get("jobs")
    if jid is not None and jobs is not None:
        raise RequestError("give either jid or jobs, not both: jid names one job, jobs a list of them")
    for option, modes in _MODE_OPTIONS.items():
        value = params.get(option)
        if value is not None and value is not False and mode not in modes:
            raise RequestError(f"{option} is only used with mode={' or mode='.join(modes)}, not mode={mode}")
    jids: t.Optional[t.List[str]] = None
    ignored = 0
    older_than: t.Optional[float] = None
    try:
        if jid is not None:
            jids = [validate_job_ref(jid)]
        elif jobs is not None:
            jids, ignored = _selection.flatten_jobs(jobs)
        if params.get("older_than") is not None:
            older_than = _selection.parse_duration(params["older_than"])
    except (InvalidJid, _selection.SelectionError) as exc:
        raise RequestError(str(exc)) from None
    states = params.get("states")
    if states is not None:
        unknown = sorted(set(states) - set(_specs.JOB_STATES))
        if unknown:
            raise RequestError(f"unknown state(s) {', '.join(unknown)} in states: use {', '.join(_specs.JOB_STATES)}")
        states = list(states)
    if jids is None and mode in ("status", "kill", "output"):
        raise RequestError(f"mode={mode} needs jid or jobs: pass the registered result of the launch")
    if jids is None and mode == "cleanup" and older_than is None and states is None:
        raise RequestError(
            "mode=cleanup needs jid, jobs or a filter: for example older_than: 1d to remove the records "
            "of jobs that ended more than a day ago"
        )
    wait = _non_negative(params, "wait", "use wait: 0 to report at once", float)
    grace = _non_negative(params, "grace", "use grace: 0 to send SIGKILL at once", int)
    if mode == "kill" and not wait:
        # A kill returns once the jobs are gone: grace, then SIGKILL and the final record.
        wait = float(grace + KILL_SETTLE)
    return_when = params.get("return_when") or "all"
    if return_when not in _specs.RETURN_WHEN:
        raise RequestError(f"return_when must be all or any, got {return_when!r}")
    signal = params.get("signal") or "TERM"
    if signal not in _specs.KILL_SIGNALS:
        raise RequestError(f"signal must be one of {', '.join(_specs.KILL_SIGNALS)}, got {signal!r}")
    request = StatusRequest(
        mode=mode, jids=jids, single=jid is not None, ignored=ignored, wait=wait, return_when=return_when,
        signal=signal, grace=grace, states=states, older_than=older_than, force=bool(params.get("force")),
    )
    if mode == "output":
        if wait:
            raise RequestError(
                "mode=output reads at once and does not wait: to see the output while waiting for the jobs, "
                "use mode=status with wait and follow: true"
            )
        request = request.replace(output=True, **_output_options(params, t.cast(t.List[str], jids)))
    return request


def parse_follow(params: t.Mapping[str, t.Any]) -> t.Optional[float]:
    """Seconds between looks at the output when a wait follows it, else None; raises RequestError."""
    if not params.get("follow"):
        if params.get("follow_interval") is not None:
            raise RequestError("follow_interval is only used with follow: true")
        return None
    if not params.get("wait"):
        raise RequestError(
            "follow: true shows the jobs' output while waiting for them: set wait to the seconds to wait"
        )
    try:
        return follow_interval(params.get("follow_interval"))
    except FollowError as exc:
        raise RequestError(str(exc)) from None


def _output_options(params: t.Mapping[str, t.Any], jids: t.List[str]) -> dict:
    """output_since, output_tail and output_max_bytes of mode=output."""
    since, tail, max_bytes = params.get("since"), params.get("tail"), params.get("max_bytes")
    if since is not None and tail is not None:
        raise RequestError(
            "give either since or tail, not both: since reads on from byte offsets, tail reads the last lines"
        )
    if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
        raise RequestError(f"tail must be 0 or more lines, got {tail!r}")
    if max_bytes is None:
        max_bytes = _output_reader.DEFAULT_MAX_BYTES
    limit = _output_reader.MAX_BYTES_LIMIT
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1 <= max_bytes <= limit:
        raise RequestError(
            f"max_bytes must be from 1 to {_output_reader.MAX_BYTES_LIMIT} bytes per stream, got {max_bytes!r}: "
            "read larger output in several calls, each from the next_since of the one before"
        )
    return {"output_since": output_since(since, jids), "output_tail": tail, "output_max_bytes": max_bytes}


def output_since(since: t.Any, jids: t.List[str]) -> t.Dict[str, t.Dict[str, int]]:
    """Offsets per job and stream from the since option: a number, per stream, or per job; raises RequestError."""
    if since is None:
        return {}
    if isinstance(since, dict) and since and all(isinstance(key, str) and is_jid(key) for key in since):
        unknown = sorted(set(since) - set(jids))
        if unknown:
            raise RequestError(
                f"since names job(s) {', '.join(unknown)} that are not asked about: give their offsets with "
                "the jid or jobs they belong to"
            )
        return {jid: _stream_offsets(value, f"since[{jid}]") for jid, value in since.items()}
    offsets = _stream_offsets(since, "since")
    return {jid: dict(offsets) for jid in jids}


def _stream_offsets(value: t.Any, where: str) -> t.Dict[str, int]:
    if isinstance(value, dict):
        unknown = sorted(str(key) for key in set(value) - set(_output_reader.STREAMS))
        if unknown:
            raise RequestError(
                f"{where} has unknown key(s) {', '.join(unknown)}: give a byte offset, offsets per stream "
                "(stdout, stderr), or offsets per job id (the next_since of an earlier mode=output result)"
            )
        return {stream: _offset(offset, f"{where}.{stream}") for stream, offset in value.items()}
    offset = _offset(value, where)
    return {stream: offset for stream in _output_reader.STREAMS}


def _offset(value: t.Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RequestError(
            f"{where} must be a byte offset of 0 or more, got {value!r}: use 0 to read from the start, "
            "or tail for the last lines"
        )
    return value


def _non_negative(params: t.Mapping[str, t.Any], name: str, fix: str, kind: type) -> t.Any:
    value = params.get(name)
    if value is None:
        return kind(0) if name == "wait" else DEFAULT_GRACE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RequestError(f"{name} must be 0 or more seconds, got {value!r}: {fix}")
    return kind(value)
