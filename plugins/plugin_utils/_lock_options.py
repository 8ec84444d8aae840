# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock and lock_timeout options of run and of each run_parallel job, checked on the controller."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail

from ansible_collections.longrun.jobs.plugins.module_utils._job.locks import LockError, normalize_locks
from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS
from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure


def lock_options(
    options: t.Mapping[str, t.Any], *, async_limit: int, label: str = ""
) -> t.Tuple[t.List[str], t.Optional[int]]:
    """The sorted lock names and the lock_timeout (None: the async limit); raises AnsibleActionFail with a sentence."""
    prefix = f"{label}: " if label else ""
    try:
        locks = normalize_locks(options.get("lock"))
    except LockError as exc:
        raise action_failure(f"{prefix}{exc}") from None
    lock_timeout = options.get("lock_timeout")
    if lock_timeout is not None and not locks:
        raise AnsibleActionFail(
            f"{prefix}lock_timeout is how long the job waits for its locks: it needs lock (a lock name or a list)"
        )
    if lock_timeout is not None and not 0 <= lock_timeout <= MAX_SECONDS:
        raise AnsibleActionFail(
            f"{prefix}lock_timeout must be 0 to {MAX_SECONDS} seconds, got {lock_timeout}: "
            "use 0 to fail at once when a lock is busy"
        )
    if locks and not async_limit:
        raise AnsibleActionFail(f"{prefix}lock needs async: the job's supervisor holds the locks")
    return locks, lock_timeout


def lock_wait(locks: t.Sequence[str], lock_timeout: t.Optional[int], async_limit: int) -> int:
    """The longest a job can wait for its locks before it starts: what a controller's wait must add."""
    if not locks:
        return 0
    return async_limit if lock_timeout is None else lock_timeout
