# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller lease of a job launched with on_controller_loss: kill.

The supervisor starts the lease; every status request that names the job (each window of a
controller's wait, each async_status read) renews it for its wait plus the lease's seconds.
When it expires, no controller has waited on the job for that long, and the supervisor
kills the job (supervise.py). Jobs launched without a lease have no lease file: nothing renews them.
"""

from __future__ import annotations

import time

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

# Type checkers only: the target agent imports this module on every status request.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t


def start_lease(async_dir: str, jid: str, seconds: int, *, now: t.Optional[float] = None) -> float:
    """Write the job's first lease, which expires seconds from now; returns when (epoch seconds)."""
    expires_at = (time.time() if now is None else now) + seconds
    _store.write_lease(async_dir, jid, expires_at=expires_at, seconds=seconds)
    return expires_at


def renew_leases(async_dir: str, jids: t.Iterable[str], *, wait: float, now: t.Optional[float] = None) -> t.List[str]:
    """Renew the leases of the jobs named, for a wait of wait seconds; returns the jids renewed.

    A lease is only ever pushed back: it then expires its seconds after the wait's end.
    """
    now = time.time() if now is None else now
    renewed = []
    for jid in jids:
        if not _record.is_jid(jid):
            continue
        lease = _store.read_lease(async_dir, jid)
        if lease is None:
            continue
        expires_at, seconds = lease
        wanted = now + max(0.0, wait) + seconds
        if wanted <= expires_at:
            continue
        try:
            _store.write_lease(async_dir, jid, expires_at=wanted, seconds=seconds)
        except _store.StoreError:
            # A full disk: the supervisor judges by the lease it last saw.
            continue
        if _store.record_mtime(async_dir, jid) is None:
            # The job's files went while we renewed: leave no lease behind.
            _store.remove_side_files(async_dir, jid, ".lease")
            continue
        renewed.append(jid)
    return renewed


def lease_expiry(async_dir: str, jid: str, *, known: float) -> float:
    """When the job's lease expires, as its file says now; never earlier than known (a lost or bad file)."""
    lease = _store.read_lease(async_dir, jid)
    return known if lease is None else max(known, lease[0])
