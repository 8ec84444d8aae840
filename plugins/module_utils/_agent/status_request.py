# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Serving status, output, kill, list and cleanup requests on the target; the controller checked their options."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import housekeeping as _housekeeping
from ansible_collections.longrun.jobs.plugins.module_utils._job import kill as _kill
from ansible_collections.longrun.jobs.plugins.module_utils._job import lease as _lease
from ansible_collections.longrun.jobs.plugins.module_utils._job import output_reader as _output_reader
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import sentences as _sentences
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    JobEntry,
    StatusReply,
    StatusRequest,
    holds_undecodable_text,
)

# Job files to remove once the reply has reached the controller: (async dir, jid).
Removals = t.List[t.Tuple[str, str]]


def remove_job_files(async_dir: str, jid: str, after_reply: t.Optional[Removals]) -> None:
    """Remove an ended job's files now, or list them in after_reply to go once the reply is out."""
    if after_reply is None:
        collect_job(async_dir, jid)
    else:
        after_reply.append((async_dir, jid))


def collect_job(async_dir: str, jid: str) -> None:
    """Remove the files of an ended job whose end was delivered; a named job's record stays (see names.collect)."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names

    _names.collect(async_dir, jid)


class RequestError(Exception):
    """A request that cannot be served; the message names the problem and the fix."""


def job_entry(async_dir: str, record: _record.JobRecord) -> JobEntry:
    """One job as the replies report it."""
    return JobEntry(
        ansible_job_id=record.jid,
        results_file=_store.record_path(async_dir, record.jid),
        finished=record.finished,
        failed=record.failed,
        job=record.public(),
        result=record.result if record.finished else None,
    )


def listed_entry(async_dir: str, job: _housekeeping.ListedJob) -> JobEntry:
    """One job of mode=list: its state and age, without the (possibly large) module result."""
    return job_entry(async_dir, job.record).replace(result=None, age=job.age)


def handle_request(request: StatusRequest, *, after_reply: t.Optional[Removals] = None) -> StatusReply:
    """Serve one status, kill, list or cleanup request; returns the reply for the controller.

    With after_reply, the files of ended jobs that a status request removes are
    only listed there, for the caller to remove once the reply was delivered.
    """
    try:
        async_dir = _store.resolve_async_dir(request.async_dir)
    except _store.StoreError as exc:
        raise RequestError(str(exc)) from exc
    if request.jids is None and request.mode in ("status", "kill", "output"):
        raise RequestError(f"mode={request.mode} needs job ids")
    if request.jids is not None and not all(_record.is_jid(ref) for ref in request.jids):
        try:
            return _serve_named(async_dir, request, after_reply)
        except _store.StoreError as exc:
            raise RequestError(str(exc)) from exc
    try:
        reply = _serve(async_dir, request, after_reply)
        if request.mode == "cleanup" and not request.check_mode and reply.removed:
            _prune_names(async_dir)
        return reply
    except _store.StoreError as exc:
        raise RequestError(str(exc)) from exc


def _serve(async_dir: str, request: StatusRequest, after_reply: t.Optional[Removals]) -> StatusReply:
    try:
        if request.mode == "list":
            return list_request(async_dir, request)
        if request.mode == "kill":
            return kill_request(async_dir, request)
        if request.mode == "cleanup":
            if request.single and request.older_than is None and request.states is None and not request.force:
                return cleanup_one(async_dir, t.cast(t.List[str], request.jids)[0], check_mode=request.check_mode)
            return cleanup_request(async_dir, request)
        if request.mode == "output":
            # Reading output never removes anything.
            request = request.replace(output=True, remove_ended=False)
        return status_request(async_dir, request, after_reply=after_reply)
    except _store.StoreError as exc:
        raise RequestError(str(exc)) from exc


def _serve_named(async_dir: str, request: StatusRequest, after_reply: t.Optional[Removals]) -> StatusReply:
    """A request whose jobs are given (partly) by name: each name is served as the jid it stands for.

    A name that stands for no job is answered as a job in state not_found whose id is the name.
    """
    # Imported here: requests by jid, the most frequent ones, never load it.
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names

    refs = t.cast(t.List[str], request.jids)
    resolved = [_names.resolve(async_dir, ref) for ref in refs]
    known = [jid for jid in resolved if jid is not None]
    unknown = [ref for ref, jid in zip(refs, resolved) if jid is None]
    if not known:
        if request.mode == "cleanup" and request.older_than is None and request.states is None:
            reply = StatusReply(not_found=list(unknown))
            if request.single:
                reply = reply.replace(jobs=[_unknown_entry(async_dir, unknown[0])])
            return reply
        if request.mode == "list":
            return StatusReply(
                jobs=[_unknown_entry(async_dir, ref) for ref in unknown if request.states is None], async_dir=async_dir
            )
        reply = _serve(async_dir, request.replace(jids=[]), after_reply)
    else:
        reply = _serve(async_dir, request.replace(jids=known), after_reply)
    if request.mode == "cleanup":
        if unknown:
            reply = reply.replace(not_found=list(reply.not_found or []) + unknown)
        if not request.check_mode and reply.removed:
            _prune_names(async_dir)
        return reply
    if request.mode == "list":
        if request.states is None and request.older_than is None:
            reply = reply.replace(jobs=list(reply.jobs) + [_unknown_entry(async_dir, ref) for ref in unknown])
        return reply
    # status, output and kill: one entry per job asked about, in the order asked.
    entries = iter(reply.jobs)
    ordered = [
        next(entries) if jid is not None else _unknown_entry(async_dir, ref) for ref, jid in zip(refs, resolved)
    ]
    return reply.replace(jobs=ordered)


def _unknown_entry(async_dir: str, name: str) -> JobEntry:
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names

    record = _names.unknown_name(async_dir, name)
    return JobEntry(ansible_job_id=name, results_file=None, finished=True, failed=True, job=record.public())


def _prune_names(async_dir: str) -> None:
    """mode=cleanup: the job names whose jobs it removed (or that stand for nothing) go too."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names

    try:
        _names.prune(async_dir)
    except (OSError, _store.StoreError):
        # A leftover name is harmless: it stands for no job, and the next launch of it starts one.
        pass


def status_request(async_dir: str, request: StatusRequest, *, after_reply: t.Optional[Removals] = None) -> StatusReply:
    """With remove_ended, the files of the jobs found ended go (after the reply, with after_reply).

    With keep_undecodable, an ended job whose result holds bytes that are not UTF-8 keeps its files:
    the controller refuses such a result (MODULE_STRICT_UTF8_RESPONSE), so it is not delivered.
    """
    jids = t.cast(t.List[str], request.jids)
    # A controller (or a playbook's async_status) waits on these jobs: their leases hold until its wait ends.
    _lease.renew_leases(async_dir, jids, wait=request.wait)
    records = _status.wait_for_jobs(async_dir, jids, timeout=request.wait, return_when=request.return_when)
    entries = [job_entry(async_dir, record) for record in records]
    if request.output:
        for record, entry in zip(records, entries):
            entry.output = job_output(async_dir, record, request)
    removed = []
    if request.remove_ended:
        for record, entry in zip(records, entries):
            if not record.finished or record.state == _record.NOT_FOUND:
                continue
            if request.keep_undecodable and holds_undecodable_text(entry):
                continue
            remove_job_files(async_dir, record.jid, after_reply)
            removed.append(record.jid)
    return StatusReply(changed=bool(removed), jobs=entries, removed=removed, ignored=request.ignored)


def job_output(async_dir: str, record: _record.JobRecord, request: StatusRequest) -> dict:
    """The job's output that the request asks for; read before any of the job's files go."""
    return _output_reader.read_job_output(
        async_dir,
        record,
        since=request.output_since.get(record.jid),
        tail=request.output_tail,
        max_bytes=request.output_max_bytes or _output_reader.DEFAULT_MAX_BYTES,
        keep_up=request.output_keep_up,
        fallback=not request.output_keep_up,
    )


def kill_request(async_dir: str, request: StatusRequest) -> StatusReply:
    outcome = _kill.kill_jobs(
        async_dir,
        t.cast(t.List[str], request.jids),
        signal_name=request.signal,
        grace=request.grace,
        wait=request.wait,
        check_mode=request.check_mode,
    )
    return StatusReply(
        changed=bool(outcome.signalled),
        jobs=[job_entry(async_dir, record) for record in outcome.records],
        killed=outcome.killed,
        refused=outcome.refused,
        ignored=request.ignored,
    )


def list_request(async_dir: str, request: StatusRequest) -> StatusReply:
    listed = _housekeeping.list_jobs(
        async_dir, jids=request.jids, states=request.states, older_than=request.older_than
    )
    return StatusReply(jobs=[listed_entry(async_dir, job) for job in listed], async_dir=async_dir)


def cleanup_request(async_dir: str, request: StatusRequest) -> StatusReply:
    outcome = _housekeeping.cleanup_jobs(
        async_dir,
        jids=request.jids,
        states=request.states,
        older_than=request.older_than,
        force=request.force,
        signal_name=request.signal,
        grace=request.grace,
        check_mode=request.check_mode,
    )
    return StatusReply(
        changed=bool(outcome.removed),
        removed=outcome.removed,
        spared=outcome.spared,
        killed=outcome.killed,
        not_found=outcome.not_found,
        async_dir=async_dir,
        ignored=request.ignored,
    )


def cleanup_one(async_dir: str, jid: str, *, check_mode: bool = False) -> StatusReply:
    """The stock form: remove one ended job's files; a running job's record is never removed."""
    record = _status.inspect_job(async_dir, jid)
    entry = job_entry(async_dir, record)
    removed = []
    if record.state in _record.ACTIVE_STATES:
        entry.failed = True
        entry.job["msg"] = _sentences.record_kept(jid, waiting=record.state == _record.WAITING)
        entry.job["reason"] = record.state
    elif record.state != _record.NOT_FOUND:
        if not check_mode:
            _store.remove_job_files(async_dir, jid)
        removed.append(jid)
    return StatusReply(changed=bool(removed), jobs=[entry], removed=removed)
