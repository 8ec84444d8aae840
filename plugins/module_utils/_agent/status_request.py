# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the async_status module does with its parameters, as plain functions."""

from __future__ import annotations

import dataclasses
import re
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils import _selection, _specs
from ansible_collections.longrun.jobs.plugins.module_utils._job import housekeeping as _housekeeping
from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Options that only some modes use; anything else given to them is a mistake worth naming.
_MODE_OPTIONS = {
    "states": ("list", "cleanup"),
    "older_than": ("list", "cleanup"),
    "force": ("cleanup",),
}


# Job files to remove once the reply has reached the controller: (async dir, jid).
Removals = t.List[t.Tuple[str, str]]


def remove_job_files(async_dir: str, jid: str, after_reply: t.Optional[Removals]) -> None:
    """Remove an ended job's files now, or list them in after_reply to go once the reply is out."""
    if after_reply is None:
        _store.remove_job_files(async_dir, jid)
    else:
        after_reply.append((async_dir, jid))


class RequestError(Exception):
    """A request that cannot be served; the message names the problem and the fix."""


@dataclasses.dataclass
class StatusRequest:
    mode: str
    # None when the call selects jobs by filters (list, cleanup) rather than by id.
    jids: t.Optional[t.List[str]]
    # True for the stock form: one jid, stock-compatible result.
    single: bool
    skipped: int = 0
    wait: float = 0.0
    return_when: str = "all"
    signal: str = "TERM"
    grace: int = _specs.DEFAULT_GRACE
    states: t.Optional[t.List[str]] = None
    older_than: t.Optional[float] = None
    force: bool = False


def parse_request(params: t.Mapping[str, t.Any]) -> StatusRequest:
    """Check the options together and select the jobs; raises RequestError."""
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
    request = StatusRequest(mode=mode, jids=None, single=jid is not None)
    try:
        if jid is not None:
            request.jids = [_record.validate_jid(jid)]
        elif jobs is not None:
            request.jids, request.skipped = _selection.flatten_jobs(jobs)
            request.skipped += int(params.get("_skipped") or 0)
        if params.get("older_than") is not None:
            request.older_than = _selection.parse_duration(params["older_than"])
    except (_record.InvalidJid, _selection.SelectionError) as exc:
        raise RequestError(str(exc)) from None
    states = params.get("states")
    if states is not None:
        unknown = sorted(set(states) - set(_specs.JOB_STATES))
        if unknown:
            raise RequestError(f"unknown state(s) {', '.join(unknown)} in states: use {', '.join(_specs.JOB_STATES)}")
        request.states = list(states)
    request.force = bool(params.get("force"))
    if request.jids is None and mode in ("status", "kill"):
        raise RequestError(f"mode={mode} needs jid or jobs: pass the registered result of the launch")
    if request.jids is None and mode == "cleanup" and request.older_than is None and request.states is None:
        raise RequestError(
            "mode=cleanup needs jid, jobs or a filter: for example older_than: 1d to remove the records "
            "of jobs that ended more than a day ago"
        )
    request.wait = _non_negative(params, "wait", "use wait: 0 to report at once", float)
    request.grace = _non_negative(params, "grace", "use grace: 0 to send SIGKILL at once", int)
    if mode == "kill" and not request.wait:
        # A kill returns once the jobs are gone: grace, then SIGKILL and the final record.
        request.wait = float(request.grace + _kill.KILL_SETTLE)
    request.return_when = params.get("return_when") or "all"
    if request.return_when not in _specs.RETURN_WHEN:
        raise RequestError(f"return_when must be all or any, got {request.return_when!r}")
    request.signal = params.get("signal") or "TERM"
    if request.signal not in _specs.KILL_SIGNALS:
        raise RequestError(f"signal must be one of {', '.join(_specs.KILL_SIGNALS)}, got {request.signal!r}")
    return request


def _non_negative(params: t.Mapping[str, t.Any], name: str, fix: str, kind: type) -> t.Any:
    value = params.get(name)
    if value is None:
        return kind(0) if name == "wait" else _specs.DEFAULT_GRACE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise RequestError(f"{name} must be 0 or more seconds, got {value!r}: {fix}")
    return kind(value)


def job_entry(async_dir: str, record: _record.JobRecord) -> dict:
    """One job as the module reports it."""
    return {
        "ansible_job_id": record.jid,
        "results_file": _store.record_path(async_dir, record.jid),
        "finished": record.finished,
        "failed": record.failed,
        "job": record.public(),
        "result": record.result if record.finished else None,
    }


def listed_entry(job: _housekeeping.ListedJob) -> dict:
    """One job of mode=list: its state and age, without the (possibly large) module result."""
    public = job.record.public()
    return {
        "ansible_job_id": job.record.jid,
        "state": job.record.state,
        "reason": public.get("reason"),
        "age": job.age,
        "started_at": job.record.started_at,
        "ended_at": job.record.ended_at,
        "duration": public.get("duration"),
        "origin": job.record.origin,
        "msg": public.get("msg"),
    }


def handle_request(params: t.Mapping[str, t.Any], *, after_reply: t.Optional[Removals] = None) -> dict:
    """Serve one status, kill, list or cleanup request; returns the reply for the controller.

    With after_reply, the files of ended jobs that a status request removes are
    only listed there, for the caller to remove once the reply was delivered.
    """
    request = parse_request(params)
    try:
        async_dir = _store.resolve_async_dir(params["_async_dir"])
    except _store.StoreError as exc:
        raise RequestError(str(exc)) from exc
    check_mode = bool(params.get("_check_mode"))
    try:
        if request.mode == "list":
            return list_request(async_dir, request)
        if request.mode == "kill":
            return kill_request(async_dir, request, check_mode=check_mode)
        if request.mode == "cleanup":
            if request.single and request.older_than is None and request.states is None and not request.force:
                return cleanup_one(async_dir, t.cast(t.List[str], request.jids)[0], check_mode=check_mode)
            return cleanup_request(async_dir, request, check_mode=check_mode)
        return status_request(
            async_dir, request, remove_ended=bool(params.get("_remove_ended")), after_reply=after_reply,
            keep_undecodable=bool(params.get("_keep_undecodable")),
        )
    except _store.StoreError as exc:
        raise RequestError(str(exc)) from exc


def status_request(
    async_dir: str,
    request: StatusRequest,
    *,
    remove_ended: bool,
    after_reply: t.Optional[Removals] = None,
    keep_undecodable: bool = False,
) -> dict:
    """With keep_undecodable, an ended job whose result holds bytes that are not UTF-8 keeps its files:
    the controller refuses such a result (MODULE_STRICT_UTF8_RESPONSE), so it is not delivered."""
    jids = t.cast(t.List[str], request.jids)
    records = _status.wait_for_jobs(async_dir, jids, timeout=request.wait, return_when=request.return_when)
    entries = [job_entry(async_dir, record) for record in records]
    removed = []
    if remove_ended:
        for record, entry in zip(records, entries):
            if not record.finished or record.state == _record.NOT_FOUND:
                continue
            if keep_undecodable and holds_undecodable_text(entry):
                continue
            remove_job_files(async_dir, record.jid, after_reply)
            removed.append(record.jid)
    return {
        "changed": bool(removed),
        "jobs": entries,
        "removed": removed,
        "ignored": request.skipped,
    }


# Bytes that are not UTF-8 are read as surrogate escapes, which are lone surrogates in text.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def holds_undecodable_text(value: t.Any) -> bool:
    """Whether any text in value (keys included) came from bytes that are not UTF-8."""
    if isinstance(value, str):
        return _LONE_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(holds_undecodable_text(key) or holds_undecodable_text(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_undecodable_text(item) for item in value)
    return False


def kill_request(async_dir: str, request: StatusRequest, *, check_mode: bool) -> dict:
    outcome = _kill.kill_jobs(
        async_dir,
        t.cast(t.List[str], request.jids),
        signal_name=request.signal,
        grace=request.grace,
        wait=request.wait,
        check_mode=check_mode,
    )
    return {
        "changed": bool(outcome.signalled),
        "jobs": [job_entry(async_dir, record) for record in outcome.records],
        "killed": outcome.killed,
        "refused": outcome.refused,
        "ignored": request.skipped,
    }


def list_request(async_dir: str, request: StatusRequest) -> dict:
    listed = _housekeeping.list_jobs(
        async_dir, jids=request.jids, states=request.states, older_than=request.older_than
    )
    return {"changed": False, "jobs": [listed_entry(job) for job in listed], "async_dir": async_dir}


def cleanup_request(async_dir: str, request: StatusRequest, *, check_mode: bool) -> dict:
    outcome = _housekeeping.cleanup_jobs(
        async_dir,
        jids=request.jids,
        states=request.states,
        older_than=request.older_than,
        force=request.force,
        signal_name=request.signal,
        grace=request.grace,
        check_mode=check_mode,
    )
    return {
        "changed": bool(outcome.removed),
        "removed": outcome.removed,
        "spared": outcome.spared,
        "killed": outcome.killed,
        "not_found": outcome.not_found,
        "async_dir": async_dir,
        "ignored": request.skipped,
    }


def cleanup_one(async_dir: str, jid: str, *, check_mode: bool = False) -> dict:
    """The stock form: remove one ended job's files; a running job's record is never removed."""
    record = _status.inspect_job(async_dir, jid)
    entry = job_entry(async_dir, record)
    removed = []
    if record.state == _record.RUNNING:
        entry["failed"] = True
        entry["job"]["msg"] = _sentences.record_kept(jid)
        entry["job"]["reason"] = "running"
    elif record.state != _record.NOT_FOUND:
        if not check_mode:
            _store.remove_job_files(async_dir, jid)
        removed.append(jid)
    return {"changed": bool(removed), "jobs": [entry], "removed": removed}
