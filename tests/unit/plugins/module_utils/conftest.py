# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for tests that touch real files and real processes."""

from __future__ import annotations

import os
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _store

WaitUntil = t.Callable[..., t.Any]


def _wait_until(
    predicate: t.Callable[[], t.Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
) -> t.Any:
    """Poll predicate until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_until() -> WaitUntil:
    return _wait_until


@pytest.fixture
def umask_022() -> t.Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def async_dir(tmp_path, umask_022) -> str:
    return _store.ensure_async_dir(str(tmp_path / "async"))
