# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which stdout callbacks get our progress lines on stdout, with the real callback loader."""

from __future__ import annotations

import pytest

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

from ansible_collections.longrun.jobs.plugins.plugin_utils import _progress


@pytest.mark.parametrize(
    "name, for_people",
    [
        ("default", True),
        ("ansible.builtin.default", True),
        ("minimal", True),
        ("ansible.builtin.oneline", True),
        # Writes files; its stdout is nobody's.
        ("ansible.builtin.tree", False),
        ("no_such_callback", False),
    ],
)
def test_stdout_is_for_people(collection_loader, name, for_people):
    assert _progress.stdout_is_for_people(name) is for_people


def test_a_callback_derived_from_default_counts_as_for_people():
    class Derived(DefaultCallback):
        pass

    class Machine:
        pass

    assert _progress._written_for_people(Derived) is True  # pylint: disable=protected-access
    assert _progress._written_for_people(Machine) is False  # pylint: disable=protected-access
