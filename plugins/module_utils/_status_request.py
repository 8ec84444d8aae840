# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the async_status module does with its parameters, as plain functions."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils import _record, _status, _store


class RequestError(Exception):
    """A request that cannot be served; the message names the problem and the fix."""


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


def handle_request(params: t.Mapping[str, t.Any]) -> dict:
    """Serve one status/cleanup request; returns the module result."""
    try:
        jids = [_record.validate_jid(params["jid"])]
        async_dir = _store.resolve_async_dir(params["_async_dir"])
    except (_record.InvalidJid, _store.StoreError) as exc:
        raise RequestError(str(exc)) from exc
    if (params["wait"] or 0) < 0:
        raise RequestError(f"wait must be 0 or more seconds, got {params['wait']}: use wait: 0 to report at once")
    if params["mode"] == "cleanup":
        return cleanup_jobs(async_dir, jids)
    records = _status.wait_for_jobs(async_dir, jids, timeout=params["wait"] or 0)
    removed = []
    if params.get("_remove_ended"):
        for record in records:
            if record.finished and record.state != _record.NOT_FOUND:
                _store.remove_job_files(async_dir, record.jid)
                removed.append(record.jid)
    return {
        "changed": bool(removed),
        "jobs": [job_entry(async_dir, record) for record in records],
        "removed": removed,
    }


def cleanup_jobs(async_dir: str, jids: t.Sequence[str]) -> dict:
    """Remove the files of ended jobs; a running job's record is never removed."""
    entries = []
    removed = []
    for jid in jids:
        record = _status.inspect_job(async_dir, jid)
        entry = job_entry(async_dir, record)
        if record.state == _record.RUNNING:
            entry["failed"] = True
            entry["job"]["msg"] = (
                f"job {jid} is still running, so its record was kept: wait for it to end, "
                "or kill it first"
            )
            entry["job"]["reason"] = "running"
        elif record.state != _record.NOT_FOUND:
            _store.remove_job_files(async_dir, jid)
            removed.append(jid)
        entries.append(entry)
    return {"changed": bool(removed), "jobs": entries, "removed": removed}
