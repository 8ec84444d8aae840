# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent mode's ansible.legacy.async_status: longrun.jobs.async_status, a superset of core's own.

Core runs ``async_status:`` tasks, ad hoc ``-m async_status`` and its own poller and cleanup of
async tasks through this one, so all of them read longrun jobs (and stock ones) with stock's keys.
"""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as _LongrunAsyncStatus
from ansible_collections.longrun.jobs.plugins.plugin_utils._transparent import apply_builtin_module_defaults


class ActionModule(_LongrunAsyncStatus):
    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        apply_builtin_module_defaults(self, "async_status")
        return super().run(tmp, task_vars)
