# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One scheduling round of run_parallel's jobs, on the target.

The controller sends the jobs that may start plus the ids of those running.
The target launches up to the limit, waits for any job to end, launches the
next one at once, and so on until the round's time is up, every job has
ended, or (with stop_on_failure) a job failed. A slot that frees is refilled
within milliseconds, with no round trip to the controller. Records are left
in place until the last round, so that a reply lost with the connection can
be rebuilt.
"""

from __future__ import annotations

import time
import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._agent.status_request import (
    Removals,
    job_entry,
    remove_job_files,
)
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import status as _status
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._protocol import (
    JobEntry,
    LaunchReply,
    LaunchRequest,
    RoundReply,
    RoundRequest,
    holds_undecodable_text,
)

LaunchFunction = t.Callable[[LaunchRequest], LaunchReply]


def run_round(request: RoundRequest, *, launch: LaunchFunction, after_reply: t.Optional[Removals] = None) -> RoundReply:
    """Serve one round; launch(request) starts one job and returns the launch reply (or raises).

    With after_reply, the last round's records are listed there instead of removed,
    for the caller to remove once the reply was delivered. With keep_undecodable, a
    job whose result holds bytes that are not UTF-8 keeps its record: the controller
    refuses such a result (MODULE_STRICT_UTF8_RESPONSE), so it is not delivered.
    """
    async_dir = _store.resolve_async_dir(request.async_dir)
    running = list(request.running)
    queue = list(request.queue)
    limit = request.limit
    deadline = time.monotonic() + max(0.0, request.wait)
    launched: t.List[t.Tuple[int, LaunchReply]] = []
    ended: t.List[JobEntry] = []
    stopped = False
    while True:
        while queue and (limit <= 0 or len(running) < limit) and not stopped:
            key, launch_request = queue.pop(0)
            try:
                reply = launch(launch_request)
            except Exception as exc:  # pylint: disable=broad-except
                # One job that cannot start must not hide the state of the others.
                reply = LaunchReply(failed=True, msg=str(exc))
            launched.append((key, reply))
            if reply.failed or reply.ansible_job_id is None:
                stopped = stopped or request.stop_on_failure
            else:
                running.append(reply.ansible_job_id)
        slot_free = limit <= 0 or len(running) < limit
        if not running or stopped or (slot_free and request.more_queued and not queue):
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
            if record.failed and request.stop_on_failure:
                stopped = True
        if stopped:
            break
    still = [job_entry(async_dir, _status.inspect_job(async_dir, jid)) for jid in running]
    removed = False
    if not running and not queue and not request.more_queued and not stopped:
        # The last round: the records (of this round's jobs and of the earlier ones, which the
        # controller names) are no longer needed, so they go without another round trip.
        delivered = [entry for entry in ended if not (request.keep_undecodable and holds_undecodable_text(entry))]
        for jid in [entry.ansible_job_id for entry in delivered] + request.forget:
            remove_job_files(async_dir, _record.validate_jid(jid), after_reply)
        removed = True
    return RoundReply(
        removed=removed,
        changed=bool(launched),
        launched=launched,
        ended=ended,
        running=still,
        unlaunched=[key for key, _launch in queue],
    )
