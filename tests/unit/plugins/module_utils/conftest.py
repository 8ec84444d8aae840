# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for tests that touch real files and real processes."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
import typing as t

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils import _record, _status, _store, _supervisor

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


def read_meta(async_dir: str, jid: str) -> dict:
    with open(os.path.join(async_dir, jid), encoding="utf-8") as handle:
        return json.load(handle)[_record.META_KEY]


class Launcher:
    """Starts real supervised jobs (tiny Python programs standing in for modules) and tracks their processes."""

    def __init__(self, async_dir: str, janitor) -> None:
        self.async_dir = async_dir
        self.janitor = janitor

    def launch(self, source: str, *, jid: str = "j1.1", timeout: int = 30, grace: int = 1) -> dict:
        spec = _supervisor.LaunchSpec(
            jid=jid,
            async_dir=self.async_dir,
            timeout=timeout,
            grace=grace,
            interpreter=sys.executable,
            payload=textwrap.dedent(source).encode("utf-8"),
        )
        job = _supervisor.launch(spec)
        self.janitor.track_job(self.async_dir, jid)
        return job

    def meta(self, jid: str = "j1.1") -> dict:
        return read_meta(self.async_dir, jid)

    def launch_shell(self, script: str, **options: t.Any) -> dict:
        """A job whose own process is sh running script (the Python stand-in execs it)."""
        return self.launch(f"import os\nos.execvp('sh', ['sh', '-c', {script!r}])\n", **options)

    def wait(self, jid: str = "j1.1", timeout: float = 20) -> _record.JobRecord:
        (record,) = _status.wait_for_jobs(self.async_dir, [jid], timeout=timeout)
        return record


@pytest.fixture
def launcher(async_dir, janitor) -> Launcher:
    return Launcher(async_dir, janitor)
