# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The task result an AnsibleAction exception stands for, the same on every supported ansible-core."""

from __future__ import annotations

from ansible.errors import AnsibleAction, AnsibleActionFail


def result_of_action_exception(exc: AnsibleAction) -> dict:
    """Return what ``exc`` adds to the task result: its own data, plus ``failed`` and ``msg`` for a failure.

    ``AnsibleActionFail.result`` holds ``failed`` and ``msg`` up to ansible-core 2.20; from 2.21 on
    it holds only the ``result=`` given to the exception, and core adds the rest itself, but only
    when the exception leaves ``run()``. As in core, the exception's message wins over a ``msg``
    in its data.
    """
    result = dict(exc.result)
    if isinstance(exc, AnsibleActionFail):
        result.update(failed=True, msg=exc.message)
    return result
