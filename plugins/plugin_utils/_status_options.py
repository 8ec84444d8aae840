# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""async_status's options, checked together once on the controller and turned into a status request."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job.record import InvalidJid, validate_jid
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import StatusRequest
from ansible_collections.longrun.jobs.plugins.module_utils._timing import DEFAULT_GRACE, KILL_SETTLE
from ansible_collections.longrun.jobs.plugins.plugin_utils import _selection, _specs

# Options that only some modes use; anything else given to them is a mistake worth naming.
_MODE_OPTIONS = {
    "states": ("list", "cleanup"),
    "older_than": ("list", "cleanup"),
    "force": ("cleanup",),
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
        if value not in (None, False) and mode not in modes:
            raise RequestError(f"{option} is only used with mode={' or mode='.join(modes)}, not mode={mode}")
    jids: t.Optional[t.List[str]] = None
    ignored = 0
    older_than: t.Optional[float] = None
    try:
        if jid is not None:
            jids = [validate_jid(jid)]
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
    if jids is None and mode in ("status", "kill"):
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
    return StatusRequest(
        mode=mode, jids=jids, single=jid is not None, ignored=ignored, wait=wait, return_when=return_when,
        signal=signal, grace=grace, states=states, older_than=older_than, force=bool(params.get("force")),
    )


def _non_negative(params: t.Mapping[str, t.Any], name: str, fix: str, kind: type) -> t.Any:
    value = params.get(name)
    if value is None:
        return kind(0) if name == "wait" else DEFAULT_GRACE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RequestError(f"{name} must be 0 or more seconds, got {value!r}: {fix}")
    return kind(value)
