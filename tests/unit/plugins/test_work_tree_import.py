# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tests exercise the work tree's code, never a built copy that may be stale (issue 11, item 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible.plugins.loader import action_loader

from ansible_collections.longrun.jobs.plugins.module_utils._job import record as _record
from ansible_collections.longrun.jobs.plugins.plugin_utils import _target_agent

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("module", [_record, _target_agent], ids=["module_utils", "plugin_utils"])
def test_collection_code_is_imported_from_the_work_tree(module) -> None:
    path = Path(module.__file__).resolve()
    assert path.is_relative_to(REPO_ROOT / "plugins"), f"{module.__name__} was imported from {path}, not the work tree"


@pytest.mark.usefixtures("collection_loader")
def test_plugin_loader_finds_the_work_tree_action() -> None:
    context = action_loader.find_plugin_with_context("longrun.jobs.run")
    assert context.resolved, context.redirect_list
    path = Path(context.plugin_resolved_path).resolve()
    assert path == REPO_ROOT / "plugins" / "action" / "run.py", path
