# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent mode's ansible.legacy.uri: core's own, except that async requests run as longrun jobs.

Core's uri action only runs the uri module, after copying files the request sends (``src``, or
files of a multipart body) to the target; a task that sends such files stays with core's own.
"""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.plugin_utils._transparent import (
    apply_builtin_module_defaults,
    run_as_job,
    runs_as_job,
    stock_action,
)


class ActionModule(stock_action("uri")):  # type: ignore[misc]
    # Core's own says so inside its run(), which a job does not go through.
    _supports_async = True
    _supports_check_mode = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[dict] = None) -> dict:
        apply_builtin_module_defaults(self, "uri")
        args = self._task.args
        sends_files = bool(args.get("src")) or args.get("body_format") == "form-multipart"
        if sends_files or not runs_as_job(self):
            return super().run(tmp, task_vars)
        # As core's uri action: ansible.legacy.uri, so that a library/ uri module still wins.
        return run_as_job(self, tmp, task_vars, module_name="ansible.legacy.uri")
