# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A rolling window of jobs, scheduled on the target (the engine of run_parallel).

The controller sends the jobs that may start plus the ids of those running.
The target launches up to the limit, waits for any job to end, launches the
next one at once, and so on until the window's time is up, every job has
ended, or (with stop_on_failure) a job failed. A slot that frees is refilled
within milliseconds, with no round trip to the controller. Records are left
in place until the last window, so that a reply lost with the connection can
be rebuilt.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._agent.status_request import (
    Removals,
    holds_undecodable_text,
    job_entry,
    remove_job_files,
)

LaunchFunction = t.Callable[[t.Mapping[str, t.Any]], dict]


class WindowError(ValueError):
    """A malformed window request."""


def run_window(
    params: t.Mapping[str, t.Any], *, launch: LaunchFunction, after_reply: t.Optional[Removals] = None
) -> dict:
    """Serve one window; launch(params) starts one job and returns the launch reply (or raises).

    With after_reply, the last window's records are listed there instead of removed,
    for the caller to remove once the reply was delivered. With _keep_undecodable, a
    job whose result holds bytes that are not UTF-8 keeps its record: the controller
    refuses such a result (MODULE_STRICT_UTF8_RESPONSE), so it is not delivered.
    """
    async_dir = _store.resolve_async_dir(params["_async_dir"])
    running = [_record.validate_jid(jid) for jid in params.get("running") or []]
    queue = list(params.get("queue") or [])
    limit = int(params.get("limit") or 0)
    stop_on_failure = bool(params.get("stop_on_failure"))
    more_queued = bool(params.get("more_queued"))
    deadline = time.monotonic() + max(0.0, float(params.get("wait") or 0))
    if any(not isinstance(item, dict) or "key" not in item or "launch" not in item for item in queue):
        raise WindowError("each queued job needs a key and launch parameters")
    launched: t.List[dict] = []
    ended: t.List[dict] = []
    stopped = False
    while True:
        while queue and (limit <= 0 or len(running) < limit) and not stopped:
            item = queue.pop(0)
            try:
                reply = launch(item["launch"])
            except Exception as exc:  # pylint: disable=broad-except
                # One job that cannot start must not hide the state of the others.
                reply = {"failed": True, "msg": str(exc)}
            launched.append({"key": item["key"], "reply": reply})
            if reply.get("failed"):
                stopped = stopped or stop_on_failure
            else:
                running.append(reply["ansible_job_id"])
        slot_free = limit <= 0 or len(running) < limit
        if not running or stopped or (slot_free and more_queued and not queue):
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        records = _status.wait_for_jobs(async_dir, running, timeout=remaining, return_when="any")
        for record in records:
            if not record.finished:
                continue
            running.remove(record.jid)
            ended.append(job_entry(async_dir, record))
            if record.failed and stop_on_failure:
                stopped = True
        if stopped:
            break
    still = [job_entry(async_dir, record) for record in (_status.inspect_job(async_dir, jid) for jid in running)]
    removed = False
    if not running and not queue and not more_queued and not stopped:
        # The last window: the records (of this window's jobs and of the earlier ones, which the
        # controller names) are no longer needed, so they go without another round trip.
        keep_undecodable = bool(params.get("_keep_undecodable"))
        delivered = [entry for entry in ended if not (keep_undecodable and holds_undecodable_text(entry))]
        for jid in [entry["ansible_job_id"] for entry in delivered] + list(params.get("forget") or []):
            remove_job_files(async_dir, _record.validate_jid(jid), after_reply)
        removed = True
    return {
        "removed": removed,
        "changed": bool(launched),
        "launched": launched,
        "ended": ended,
        "running": still,
        "unlaunched": [item["key"] for item in queue],
    }
