# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run's on_controller_loss and controller_timeout, checked: the seconds of the job's lease, or None."""

from __future__ import annotations

import typing as t

from ansible_collections.longrun.jobs.plugins.module_utils._timing import MAX_SECONDS

# Seconds after a wait window's end (or the launch) that a job with on_controller_loss: kill outlives its controller.
DEFAULT_CONTROLLER_TIMEOUT = 15


class ControllerLossError(ValueError):
    """The options are wrong; the message names the problem and the fix."""


def lease_seconds(on_controller_loss: str, controller_timeout: t.Any) -> t.Optional[int]:
    """The lease the launch asks for: controller_timeout seconds with kill, None with keep."""
    if on_controller_loss != "kill":
        if controller_timeout is not None:
            raise ControllerLossError(
                "controller_timeout is only used with on_controller_loss: kill; remove it, or set "
                "on_controller_loss: kill to end the job when no controller waits on it"
            )
        return None
    if controller_timeout is None:
        return DEFAULT_CONTROLLER_TIMEOUT
    if not 1 <= controller_timeout <= MAX_SECONDS:
        raise ControllerLossError(
            f"controller_timeout must be 1 to {MAX_SECONDS} seconds, got {controller_timeout}: it is how long "
            f"a job outlives the last wait of its controller (default {DEFAULT_CONTROLLER_TIMEOUT})"
        )
    return int(controller_timeout)
