# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleAction, AnsibleActionFail

from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure, result_of_action_exception


def test_a_failure_carries_failed_msg_and_its_data():
    result = result_of_action_exception(AnsibleActionFail("wait must be 0 or more", result={"jobs": []}))

    assert result["failed"] is True
    assert result["msg"] == "wait must be 0 or more"
    assert result["jobs"] == []


def test_the_message_of_a_failure_wins_over_a_msg_in_its_data():
    result = result_of_action_exception(AnsibleActionFail("agent failed", result={"msg": "stale", "rc": 1}))

    assert (result["failed"], result["msg"], result["rc"]) == (True, "agent failed", 1)


def test_other_actions_contribute_only_their_data():
    assert result_of_action_exception(AnsibleAction("done", result={"changed": False})) == {"changed": False}


def failure_made_while_handling(**options):
    try:
        raise ValueError("controller_timeout must be 1 or more")
    except ValueError as exc:
        return action_failure(str(exc), **options)


def test_a_failure_made_in_an_except_block_carries_no_traceback():
    # ansible-core 2.18's AnsibleActionFail records the handled exception's traceback as exception.
    result = result_of_action_exception(failure_made_while_handling())

    assert (result["failed"], result["msg"]) == (True, "controller_timeout must be 1 or more")
    assert "exception" not in result


def test_a_failure_keeps_the_exception_of_its_data():
    result = result_of_action_exception(failure_made_while_handling(result={"exception": "the module's own"}))

    assert result["exception"] == "the module's own"
