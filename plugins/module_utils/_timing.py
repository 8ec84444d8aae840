# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every time that the controller and the target both rely on, in seconds, in one place.

The controller's patience is built from the target's steps: a job ends at its limit,
the supervisor sends SIGTERM, waits the grace, sends SIGKILL and waits up to
SIGKILL_SETTLE more, then writes the end. The controller waits for that plus SETTLE.
"""

from __future__ import annotations

# The grace between SIGTERM and SIGKILL when the task gives none.
DEFAULT_GRACE = 5
# Longest async limit and grace: 100 years. Beyond that, deadlines cannot be written as dates.
MAX_SECONDS = 100 * 365 * 24 * 3600
# After SIGKILL, how long the supervisor waits for the tree to be gone before it records the end.
SIGKILL_SETTLE = 5.0
# How long run waits past async + grace for the supervisor to reap the tree and record the end.
SETTLE_SECONDS = 15
# How long mode=kill waits past the grace for SIGKILL, reaping and the final record.
KILL_SETTLE = 10
# How long a launch waits for the supervisor to report that the job starts.
LAUNCH_REPORT_TIMEOUT = 60.0
# Longest single remote wait (a long-poll window): no remote command runs much longer than a minute,
# for SSH idle limits and visible progress.
MAX_WINDOW = 55.0
# How often a waiting request re-checks that running jobs' supervisors are still alive.
LIVENESS_INTERVAL = 1.0
# How long past a job's limit a lost connection is retried: the job's grace, SIGKILL and the end record fit in it.
LIMIT_MARGIN = 60.0
