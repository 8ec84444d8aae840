# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The task result an AnsibleAction exception stands for, the same on every supported ansible-core."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleAction, AnsibleActionFail


def action_failure(message: str, result: t.Optional[dict] = None) -> AnsibleActionFail:
    """AnsibleActionFail for a bad input or a known failure, with no traceback on any supported ansible-core.

    ansible-core 2.18 sets the failure's ``exception`` to the traceback of the exception being
    handled where it is made (an ``except`` block that turns an error into a failure), and the
    default callback then reports "An exception occurred". Only an ``exception`` given in
    ``result`` (a module's own) is kept, as later cores do.
    """
    # Read first: 2.18 updates the dict given as result in place.
    own = result.get("exception") if result is not None else None
    failure = AnsibleActionFail(message, result=result)
    if own is not None:
        failure.result["exception"] = own
    else:
        failure.result.pop("exception", None)
    return failure


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
