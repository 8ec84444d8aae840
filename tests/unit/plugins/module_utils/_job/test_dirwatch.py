# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Waking on record changes in the async dir."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job.dirwatch import POLL_INTERVAL, DirWatch

# Far longer than any wake-up: a wait that lasts this long was not woken.
LONG_WAIT = 5.0


def _replace(directory: str) -> None:
    temp = os.path.join(directory, ".tmp-record")
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write("{}")
    os.replace(temp, os.path.join(directory, "j1.2"))


def _remove(directory: str) -> None:
    os.unlink(os.path.join(directory, "j1.2"))


@pytest.mark.parametrize("change", [_replace, _remove], ids=["replaced", "removed"])
def test_a_changed_record_wakes_the_waiter(tmp_path, change):
    (tmp_path / "j1.2").write_text("{}")
    with DirWatch(str(tmp_path)) as watch:
        assert watch.uses_inotify
        timer = threading.Timer(0.2, change, args=(str(tmp_path),))
        timer.start()
        started = time.monotonic()
        watch.wait(LONG_WAIT)
        waited = time.monotonic() - started
        timer.join()
    assert waited < LONG_WAIT / 2


def test_without_a_change_the_wait_lasts_its_time(tmp_path):
    with DirWatch(str(tmp_path)) as watch:
        started = time.monotonic()
        watch.wait(0.3)
        assert time.monotonic() - started >= 0.3


def test_a_missing_directory_falls_back_to_short_sleeps(tmp_path):
    with DirWatch(str(tmp_path / "missing")) as watch:
        assert not watch.uses_inotify
        started = time.monotonic()
        watch.wait(LONG_WAIT)
        assert time.monotonic() - started < POLL_INTERVAL + 1


def test_close_releases_the_descriptor(tmp_path):
    watch = DirWatch(str(tmp_path))
    fd = watch.fd
    watch.close()
    assert watch.fd is None
    assert fd is not None and not os.path.exists(f"/proc/self/fd/{fd}")
