# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A machine-readable stdout callback for tests: one JSON document with every task result, printed at the end.

It stands in for JSON stdout callbacks such as ansible.posix.json, which are not installed with ansible-core.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: json_stdout
type: stdout
short_description: prints one JSON document with every task result at the end of the run
description:
  - A test-only stand-in for JSON stdout callbacks such as C(ansible.posix.json).
"""

import json
import typing as t

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json_stdout"

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.results: t.List[dict] = []

    def _record(self, status: str, result: t.Any) -> None:  # pylint: disable=protected-access
        self.results.append({
            "host": result._host.get_name(),
            "task": result._task.get_name(),
            "status": status,
            "result": result._result,
        })

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record("ok", result)

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record("failed", result)

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._record("unreachable", result)

    def v2_playbook_on_stats(self, stats: t.Any) -> None:
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({"results": self.results, "stats": summary}, sort_keys=True, default=str))
