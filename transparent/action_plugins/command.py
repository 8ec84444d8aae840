# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent mode's ansible.legacy.command: core's own, except that async tasks run as longrun jobs.

Core runs ``command:``, the shell action (``shell:`` and ``ansible.builtin.shell:``) and ad hoc
commands through this one.
"""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.plugin_utils._transparent import (
    apply_builtin_module_defaults,
    run_as_job,
    runs_as_job,
    stock_action,
)


class ActionModule(stock_action("command")):  # type: ignore[misc]
    # Core's own says so inside its run(), which a job does not go through.
    _supports_async = True

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        apply_builtin_module_defaults(self, "command")
        if not runs_as_job(self):
            return super().run(tmp, task_vars)
        # As core's command action: ansible.legacy.command, so that a library/ command module still wins.
        return run_as_job(self, tmp, task_vars, module_name="ansible.legacy.command")
