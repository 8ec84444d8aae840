# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The target-side entry point: serve one launch, status (kill, list, cleanup) or round request.

The action plugins ship this code as a lean stdlib-only program (see
plugin_utils/_target_agent.py), which starts in a fraction of the time a full
module needs. Requests and replies are the typed messages of _protocol.py.

Every launch pays for the agent's start-up, so the modules a launch imports
(this one, _protocol, _timing, _record, _store, _proc and the launch handshake) import typing for type
checkers only, and neither dataclasses, subprocess, tempfile, shutil nor
ctypes at the top: together those cost about 20 ms per launch. Code that needs
them imports them where it is used.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys

from ansible_collections.longrun.jobs.plugins.module_utils import _protocol
from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store
from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS

# Type checkers only: the target agent imports this module on every launch (see the docstring above).
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request


class AgentError(Exception):
    """A request that cannot be served; the message names the problem and the fix."""


def launch_request(request: _protocol.LaunchRequest) -> _protocol.LaunchReply:
    """Start the supervised job of a checked launch request."""
    # Imported here: status requests, the most frequent ones, then never load subprocess.
    from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake  # pylint: disable=import-outside-toplevel
    if not 1 <= request.timeout <= MAX_SECONDS:
        raise AgentError(f"the async limit must be 1 to {MAX_SECONDS} seconds (100 years), got {request.timeout!r}")
    if not 0 <= request.grace <= MAX_SECONDS:
        raise AgentError(f"grace must be 0 to {MAX_SECONDS} seconds (100 years), got {request.grace!r}")
    if request.lock_timeout is not None and not 0 <= request.lock_timeout <= MAX_SECONDS:
        raise AgentError(f"lock_timeout must be 0 to {MAX_SECONDS} seconds, got {request.lock_timeout!r}")
    if request.lease is not None and not 1 <= request.lease <= MAX_SECONDS:
        raise AgentError(f"controller_timeout must be 1 to {MAX_SECONDS} seconds, got {request.lease!r}")
    try:
        # Like stock, the job id ends with the launcher's pid.
        jid = _record.validate_jid(f"{request.jid}.{os.getpid()}")
        async_dir = _store.ensure_async_dir(_store.resolve_async_dir(request.async_dir))
        payload = base64.b64decode(request.payload, validate=True)
        spec = _handshake.LaunchSpec(
            jid=jid,
            async_dir=async_dir,
            timeout=request.timeout,
            grace=request.grace,
            interpreter=request.interpreter,
            payload=payload,
            style=request.style,
            args_data=request.args_data.encode("utf-8") if request.args_data is not None else None,
            no_log=request.no_log,
            command=request.command,
            name=request.name,
            locks=request.locks,
            lock_timeout=request.lock_timeout,
            lease=request.lease,
        )
        if request.name is None:
            job = _handshake.launch(spec)
            existing = None
        else:
            existing, jid, job = _launch_named(request, spec)
    except (_record.InvalidJid, _store.StoreError, _handshake.LaunchError) as exc:
        raise AgentError(f"cannot launch the job: {exc}") from exc
    except (binascii.Error, ValueError) as exc:
        raise AgentError(f"cannot launch the job: the payload is not valid base64 ({exc})") from exc
    return _protocol.LaunchReply(
        ansible_job_id=jid, results_file=_store.record_path(async_dir, jid), job=job, existing=existing
    )


def _launch_named(request: _protocol.LaunchRequest, spec: t.Any) -> t.Tuple[t.Optional[str], str, dict]:
    """Launch under the name's claim, or find the job of the name (on_existing); (existing, jid, job)."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import handshake as _handshake
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.module_utils._job import names as _names

    def start() -> t.Tuple[str, dict]:
        return spec.jid, _handshake.launch(spec)

    try:
        return _names.launch_named(
            spec.async_dir, str(request.name), request.on_existing, start, grace=request.grace
        )
    except _names.NameTaken as exc:
        raise AgentError(str(exc)) from exc


def serve(message: t.Any, *, after_reply: t.Optional[_status_request.Removals] = None) -> dict:
    """Serve one request of the action plugins; job files to remove after the reply go to after_reply."""
    try:
        request = _protocol.request_from_wire(message)
    except _protocol.ProtocolError as exc:
        raise AgentError(str(exc)) from exc
    try:
        if isinstance(request, _protocol.LaunchRequest):
            return launch_request(request).to_wire()
        return _serve_jobs(request, after_reply).to_wire()
    except (_record.InvalidJid, _store.StoreError, ValueError) as exc:
        raise AgentError(str(exc)) from exc


def _serve_jobs(
    request: t.Union[_protocol.StatusRequest, _protocol.RoundRequest], after_reply: t.Optional[_status_request.Removals]
) -> t.Union[_protocol.StatusReply, _protocol.RoundReply]:
    # Imported here: a launch, the request that starts a job, then compiles none of the status code.
    # pylint: disable-next=import-outside-toplevel,redefined-outer-name
    from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request

    try:
        if isinstance(request, _protocol.StatusRequest):
            return _status_request.handle_request(request, after_reply=after_reply)
        # pylint: disable-next=import-outside-toplevel
        from ansible_collections.longrun.jobs.plugins.module_utils._agent import rounds as _rounds

        return _rounds.run_round(request, launch=launch_request, after_reply=after_reply)
    except _status_request.RequestError as exc:
        raise AgentError(str(exc)) from exc


def main() -> None:
    """Read one JSON request (argv[1] as base64, else stdin) and print one JSON reply.

    Files of ended jobs are removed only once the reply is out: if the connection
    dropped meanwhile, the records stay for the controller's retry to read.
    """
    after_reply: _status_request.Removals = []
    try:
        if len(sys.argv) > 1:
            request = json.loads(base64.b64decode(sys.argv[1]).decode("utf-8"))
        else:
            request = json.loads(sys.stdin.read())
        reply = serve(request, after_reply=after_reply)
    except AgentError as exc:
        reply = _protocol.failure(str(exc))
    except (ValueError, binascii.Error) as exc:
        reply = _protocol.failure(f"the request could not be decoded: {exc}")
    except Exception as exc:  # pylint: disable=broad-except
        # A bug must still come back as a result the controller can show, not a bare traceback.
        reply = _protocol.failure(f"internal error on the target: {type(exc).__name__}: {exc}")
    if deliver(json.dumps(reply) + "\n"):
        remove_after_reply(after_reply)


def deliver(line: str, stream: t.Optional[t.TextIO] = None) -> bool:
    """Write the reply; False when nobody reads it any more (the connection is gone)."""
    stream = stream or sys.stdout
    try:
        stream.write(line)
        stream.flush()
    except OSError:
        return False
    return True


def remove_after_reply(removals: _status_request.Removals) -> None:
    if not removals:
        # A launch: it removes nothing, and must not pay for importing the status code.
        return
    # pylint: disable-next=import-outside-toplevel,redefined-outer-name
    from ansible_collections.longrun.jobs.plugins.module_utils._agent import status_request as _status_request

    for async_dir, jid in removals:
        try:
            _status_request.collect_job(async_dir, jid)
        except (OSError, _store.StoreError):
            # An ended job's leftover record is harmless: mode=cleanup removes it.
            pass
