# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs, defined once and used by modules, action plugins and tests."""

from __future__ import annotations

DEFAULT_GRACE = 5
STATUS_MODES = ("status", "cleanup")


def run_options_spec() -> dict:
    """Options of longrun.jobs.run besides the wrapped module."""
    return {
        "grace": {"type": "int", "default": DEFAULT_GRACE},
    }


def async_status_argument_spec() -> dict:
    """Public options of longrun.jobs.async_status."""
    return {
        "jid": {"type": "str", "required": True},
        "mode": {"type": "str", "default": "status", "choices": list(STATUS_MODES)},
        "wait": {"type": "float", "default": 0},
    }


def job_wrapper_argument_spec() -> dict:
    """The wrapper is internal: only longrun.jobs.run calls it."""
    return {
        "jid": {"type": "str", "required": True},
        "async_dir": {"type": "str", "required": True},
        "timeout": {"type": "int", "required": True},
        "grace": {"type": "int", "default": DEFAULT_GRACE},
        "interpreter": {"type": "str", "required": True},
        "payload": {"type": "str", "required": True, "no_log": False},  # base64 of the module to run
        "style": {"type": "str", "default": "new", "choices": ["new", "old", "non_native_want_json", "binary"]},
        "args_data": {"type": "str"},
    }
