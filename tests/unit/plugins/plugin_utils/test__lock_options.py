# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run's lock and lock_timeout options, checked on the controller."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.longrun.jobs.plugins.plugin_utils._lock_options import lock_options, lock_wait


@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, ([], None)),
        ({"lock": "db"}, (["db"], None)),
        ({"lock": ["rpm", "backup", "backup"], "lock_timeout": 0}, (["backup", "rpm"], 0)),
        ({"lock": ["apt"], "lock_timeout": 60}, (["apt"], 60)),
    ],
)
def test_lock_options(options, expected):
    assert lock_options(options, async_limit=600) == expected


@pytest.mark.parametrize(
    "options, async_limit, words",
    [
        ({"lock": "a/b"}, 60, "lock name 'a/b' is not valid"),
        ({"lock": {"name": "x"}}, 60, "lock must be a lock name or a list of lock names, not dict"),
        ({"lock_timeout": 5}, 60, "lock_timeout is how long the job waits for its locks: it needs lock"),
        ({"lock": "db", "lock_timeout": -1}, 60, "lock_timeout must be 0 to"),
        ({"lock": "db"}, 0, "lock needs async"),
        ({"lock": ["dnf", "rpm"]}, 60, "are the same lock ('rpm')"),
    ],
)
def test_lock_options_refuse_with_one_sentence(options, async_limit, words):
    with pytest.raises(AnsibleActionFail) as caught:
        lock_options(options, async_limit=async_limit, label="job 2")
    assert words in caught.value.message
    assert caught.value.message.startswith("job 2: ")


@pytest.mark.parametrize(
    "locks, lock_timeout, wait", [([], None, 0), ([], 5, 0), (["db"], None, 300), (["db"], 7, 7)],
)
def test_lock_wait_is_what_the_controller_adds_to_its_patience(locks, lock_timeout, wait):
    assert lock_wait(locks, lock_timeout, 300) == wait
