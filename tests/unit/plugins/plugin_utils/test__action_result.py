# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.errors import AnsibleAction, AnsibleActionFail

from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import result_of_action_exception


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
