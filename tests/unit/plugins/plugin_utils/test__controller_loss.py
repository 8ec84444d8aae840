# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS
from ansible_collections.longrun.jobs.plugins.plugin_utils._controller_loss import (
    DEFAULT_CONTROLLER_TIMEOUT,
    ControllerLossError,
    lease_seconds,
)


def test_keep_asks_for_no_lease():
    assert lease_seconds("keep", None) is None


def test_kill_asks_for_the_default_lease():
    assert lease_seconds("kill", None) == DEFAULT_CONTROLLER_TIMEOUT == 15


def test_kill_asks_for_the_given_lease():
    assert lease_seconds("kill", 40) == 40


@pytest.mark.parametrize("seconds", [0, -3, MAX_SECONDS + 1])
def test_an_out_of_range_controller_timeout_is_refused(seconds):
    with pytest.raises(ControllerLossError, match=f"controller_timeout must be 1 to {MAX_SECONDS} seconds, got"):
        lease_seconds("kill", seconds)


def test_a_controller_timeout_without_kill_is_refused():
    with pytest.raises(ControllerLossError, match="controller_timeout is only used with on_controller_loss: kill"):
        lease_seconds("keep", 30)
