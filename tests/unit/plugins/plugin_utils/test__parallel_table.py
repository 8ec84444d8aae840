# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.longrun.jobs.plugins.plugin_utils._parallel_table import failure_table


def test_failure_table_of_the_documented_example():
    entries = [
        {"name": "frontend", "state": "succeeded", "rc": 0, "duration": 2.0, "msg": None},
        {
            "name": "backend",
            "state": "failed",
            "rc": 3,
            "duration": 2.06,
            "msg": "job j1.2 failed: non-zero return code (rc=3)",
        },
        {
            "name": "docs",
            "state": "not_started",
            "rc": None,
            "duration": None,
            "msg": "docs was not started:\n  fail_fast",
        },
    ]

    assert failure_table(entries).splitlines() == [
        "2 of 3 jobs did not succeed:",
        "NAME      STATE        RC  DURATION  MESSAGE",
        "frontend  succeeded    0   2.0 s",
        "backend   failed       3   2.1 s     job j1.2 failed: non-zero return code (rc=3)",
        "docs      not_started                docs was not started: fail_fast",
    ]


def test_failure_table_of_one_job_uses_the_singular():
    assert failure_table([{"name": "x", "state": "killed"}]).splitlines()[0] == "1 of 1 job did not succeed:"


def test_failure_table_cuts_long_messages_and_keeps_lines_free_of_trailing_blanks():
    table = failure_table(
        [{"name": "x", "state": "timed_out", "msg": "y" * 150}, {"name": "long name", "state": "lost"}]
    )

    rows = table.splitlines()
    assert rows[2].endswith("y" * 97 + "...")
    assert rows[3] == "long name  lost"
    assert all(row == row.rstrip() for row in rows)


def test_failure_table_columns_line_up():
    entries = [
        {"name": "a", "state": "failed", "rc": 127, "duration": 12.34, "msg": "m1"},
        {"name": "bbbbbbbbbb", "state": "succeeded", "rc": 0, "duration": 0, "msg": ""},
    ]

    header, first, _second = failure_table(entries).splitlines()[1:]

    assert first.index("failed") == header.index("STATE")
    assert first.index("127") == header.index("RC")
    assert first.index("12.3 s") == header.index("DURATION")
    assert first.index("m1") == header.index("MESSAGE")
