# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent mode's plumbing: core's own action plugins loaded by path, and which tasks run as jobs."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import typing as t
from pathlib import Path

import pytest

import ansible.plugins.action
from ansible.plugins.action import ActionBase

from ansible_collections.longrun.jobs.plugins.action.async_status import ActionModule as LongrunAsyncStatus
from ansible_collections.longrun.jobs.plugins.plugin_utils import _transparent
from ansible_collections.longrun.jobs.plugins.plugin_utils._transparent import runs_as_job, stock_action

pytestmark = pytest.mark.usefixtures("collection_loader")

CORE_ACTION_DIR = Path(ansible.plugins.action.__file__).resolve().parent
SHIM_DIR = Path(_transparent.TRANSPARENT_ACTION_DIR)


@pytest.mark.parametrize("name", ["normal", "command", "uri"])
def test_stock_action_is_cores_own_class_loaded_once(name: str) -> None:
    loaded = stock_action(name)
    assert Path(inspect.getfile(loaded)).resolve() == CORE_ACTION_DIR / f"{name}.py"
    assert issubclass(loaded, ActionBase)
    # Not under core's import name, which a legacy plugin of ours holds in a run with the mode on.
    assert loaded.__module__ == f"_longrun_stock_action_{name}"
    assert stock_action(name) is loaded


def test_a_missing_stock_action_is_an_import_error() -> None:
    with pytest.raises(ImportError, match="no_such_action"):
        stock_action("no_such_action")
    assert "_longrun_stock_action_no_such_action" not in sys.modules


def load_shim(name: str) -> t.Any:
    """A plugin of the transparent dir, loaded from its file as core loads a legacy action plugin."""
    spec = importlib.util.spec_from_file_location(f"_longrun_test_shim_{name}", SHIM_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ActionModule


def test_the_transparent_dir_holds_the_documented_plugins() -> None:
    assert sorted(path.name for path in SHIM_DIR.glob("*.py")) == [
        "async_status.py", "command.py", "normal.py", "uri.py",
    ]


@pytest.mark.parametrize("name", ["normal", "command", "uri"])
def test_each_shim_is_cores_own_plugin_underneath(name: str) -> None:
    shim = load_shim(name)
    assert shim.__mro__[1] is stock_action(name)
    # Only run() is ours: everything else a task or another plugin may use is core's.
    own = {name for name in vars(shim) if not name.startswith("__") and name not in ("_abc_impl", "_is_protocol")}
    assert own <= {"run", "_supports_async", "_supports_check_mode"}


def test_async_status_shim_is_longrun_async_status() -> None:
    assert issubclass(load_shim("async_status"), LongrunAsyncStatus)


@pytest.fixture
def action(make_action: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    def build(async_val: int) -> t.Any:
        return make_action(stock_action("normal"), "ansible.builtin.ping", {}, async_val=async_val, poll=0)

    return build


@pytest.mark.parametrize(("async_val", "expected"), [(0, False), (-1, False), (1, True), (3600, True)])
def test_only_async_tasks_run_as_jobs(action: t.Callable[..., t.Any], async_val: int, expected: bool) -> None:
    assert runs_as_job(action(async_val)) is expected


def test_a_connection_with_native_async_keeps_cores_async(action: t.Callable[..., t.Any]) -> None:
    built = action(10)
    built._connection.has_native_async = True  # the instance only: as a connection plugin class declares it
    assert runs_as_job(built) is False


def test_a_powershell_target_keeps_cores_async(action: t.Callable[..., t.Any]) -> None:
    built = action(10)
    built._connection._shell = type("PowerShell", (), {"SHELL_FAMILY": "powershell"})()
    assert runs_as_job(built) is False


def test_transparent_dir_is_inside_the_collection() -> None:
    collection_root = Path(_transparent.__file__).resolve().parents[2]
    assert SHIM_DIR.resolve() == collection_root / "transparent" / "action_plugins"
    assert os.path.isdir(SHIM_DIR)
