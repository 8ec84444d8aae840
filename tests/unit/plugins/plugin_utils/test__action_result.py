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


def test_a_failure_keeps_the_msg_of_its_own_result():
    result = result_of_action_exception(AnsibleActionFail("agent failed", result={"msg": "no such dir", "failed": True}))

    assert (result["failed"], result["msg"]) == (True, "no such dir")


def test_other_actions_contribute_only_their_data():
    assert result_of_action_exception(AnsibleAction("done", result={"changed": False})) == {"changed": False}
