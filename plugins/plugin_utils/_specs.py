# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Argument specs, defined once and used by modules, action plugins and tests."""

from __future__ import annotations

from ansible_collections.longrun.jobs.plugins.module_utils._timing import DEFAULT_GRACE

STATUS_MODES = ("status", "cleanup", "kill", "list", "output")
ON_EXISTING = ("attach", "fail", "restart", "skip")
RETURN_WHEN = ("all", "any")
# Signals that mode=kill may send first; SIGKILL follows after the grace period.
KILL_SIGNALS = ("TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "KILL")
JOB_STATES = ("running", "waiting", "succeeded", "failed", "timed_out", "killed", "lost", "unreadable")
DEFAULT_PARALLEL_TIMEOUT = 3600


def run_options_spec() -> dict:
    """Options of longrun.jobs.run besides the wrapped module."""
    return {
        "grace": {"type": "int", "default": DEFAULT_GRACE},
        "follow": {"type": "bool", "default": False},
        # None: _output_follow.DEFAULT_FOLLOW_INTERVAL.
        "follow_interval": {"type": "float"},
        # Named jobs: the name is unique per async dir; on_existing says what a re-run does.
        "name": {"type": "str"},
        "on_existing": {"type": "str", "default": "attach", "choices": list(ON_EXISTING)},
        # Locks held by the supervisor for the job's life: a name, a preset or a list of them.
        "lock": {"type": "raw"},
        "lock_timeout": {"type": "int"},
        # What the supervisor does when no controller renews the job's lease.
        "on_controller_loss": {"type": "str", "default": "keep", "choices": ["keep", "kill"]},
        "controller_timeout": {"type": "int"},
    }


def async_status_argument_spec() -> dict:
    """Public options of longrun.jobs.async_status."""
    return {
        "jid": {"type": "str"},
        # raw, so that a string is refused instead of being split on commas.
        "jobs": {"type": "raw"},
        "mode": {"type": "str", "default": "status", "choices": list(STATUS_MODES)},
        "wait": {"type": "float", "default": 0},
        "return_when": {"type": "str", "default": "all", "choices": list(RETURN_WHEN)},
        "signal": {"type": "str", "default": "TERM", "choices": list(KILL_SIGNALS)},
        "grace": {"type": "int", "default": DEFAULT_GRACE},
        "states": {"type": "list", "elements": "str", "choices": list(JOB_STATES)},
        "older_than": {"type": "raw"},
        "force": {"type": "bool", "default": False},
        # mode=output: where to start (bytes), or the last lines; at most max_bytes per stream per job.
        "since": {"type": "raw"},
        "tail": {"type": "int"},
        "max_bytes": {"type": "int"},
        # A wait shows the jobs' new output as it arrives.
        "follow": {"type": "bool", "default": False},
        "follow_interval": {"type": "float"},
    }


def async_status_constraints() -> dict:
    """Keyword arguments for AnsibleModule and validate_argument_spec besides the spec."""
    return {"mutually_exclusive": [["jid", "jobs"]]}


def run_parallel_argument_spec() -> dict:
    """Options of longrun.jobs.run_parallel, the engine of the parallel role."""
    return {
        "jobs": {"type": "list", "elements": "raw", "required": True},
        "limit": {"type": "int", "default": 0},
        "timeout": {"type": "int", "default": DEFAULT_PARALLEL_TIMEOUT},
        "wait": {"type": "int", "default": 0},
        "fail_fast": {"type": "bool", "default": False},
        "grace": {"type": "int", "default": DEFAULT_GRACE},
        "detach": {"type": "bool", "default": False},
    }
