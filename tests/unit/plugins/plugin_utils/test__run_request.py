# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible.errors import AnsibleActionFail
from ansible.plugins.loader import action_loader, module_loader

from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import (
    RunRequest,
    allowed_keys_text,
    parse_run_request,
)

pytestmark = pytest.mark.usefixtures("collection_loader")


def _parse(args: dict, collection_list=None) -> RunRequest:
    return parse_run_request(
        args, module_loader=module_loader, action_loader=action_loader, collection_list=collection_list
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            {"ansible.builtin.command": "echo hello world"},
            RunRequest("ansible.builtin.command", {"_raw_params": "echo hello world"}, {}, "ansible.builtin.command"),
        ),
        (
            {"ansible.builtin.command": {"cmd": "sleep 1", "chdir": "/tmp"}},
            RunRequest("ansible.builtin.command", {"cmd": "sleep 1", "chdir": "/tmp"}, {}, "ansible.builtin.command"),
        ),
        (
            {"command": {"argv": ["echo", "hi"]}},
            RunRequest("ansible.builtin.command", {"argv": ["echo", "hi"]}, {}, "ansible.builtin.command"),
        ),
        (
            {"ansible.builtin.shell": "echo $HOME | wc -c"},
            RunRequest(
                "ansible.builtin.command", {"_raw_params": "echo $HOME | wc -c", "_uses_shell": True}, {}, "ansible.builtin.shell"
            ),
        ),
        (
            {"shell": {"cmd": "true"}},
            RunRequest("ansible.builtin.command", {"cmd": "true", "_uses_shell": True}, {}, "ansible.builtin.shell"),
        ),
        (
            {"ansible.builtin.command": "sleep 5", "grace": 2},
            RunRequest("ansible.builtin.command", {"_raw_params": "sleep 5"}, {"grace": 2}, "ansible.builtin.command"),
        ),
        (
            {"grace": 0, "ansible.builtin.ping": None},
            RunRequest("ansible.builtin.ping", {}, {"grace": 0}, "ansible.builtin.ping"),
        ),
        (
            # uri has an action plugin that only runs the module, so it may run as a job.
            {"ansible.builtin.uri": {"url": "http://localhost"}},
            RunRequest("ansible.builtin.uri", {"url": "http://localhost"}, {}, "ansible.builtin.uri"),
        ),
        (
            # package picks its backend module on the controller, later, as core's action does.
            {"package": {"name": "git", "use": "apt"}},
            RunRequest("ansible.builtin.package", {"name": "git", "use": "apt"}, {}, "ansible.builtin.package"),
        ),
        (
            # yum is no module: its action is a redirect to dnf's, which picks the dnf backend.
            {"ansible.builtin.yum": {"name": "git"}},
            RunRequest("ansible.builtin.dnf", {"name": "git"}, {}, "ansible.builtin.dnf"),
        ),
    ],
    ids=["free-form", "dict", "short-name", "shell-free-form", "short-shell-dict", "grace", "null-args", "uri", "package", "yum"],
)
def test_parse_run_request(args, expected):
    assert _parse(args) == expected


def test_parse_run_request_free_form_keeps_the_exact_command_line():
    request = _parse({"ansible.builtin.command": "printf '%s\\n' 'a  b'"})

    assert request.module_args == {"_raw_params": "printf '%s\\n' 'a  b'"}


def test_parse_run_request_does_not_change_the_task_args():
    args = {"ansible.builtin.shell": {"cmd": "true"}, "grace": 1}
    copy = {"ansible.builtin.shell": {"cmd": "true"}, "grace": 1}

    _parse(args)

    assert args == copy


@pytest.mark.parametrize(
    "args, fragments, names_allowed_keys",
    [
        (
            {"ansible.builtin.command": "true", "ansible.builtin.ping": {}},
            ["more than one module", "ansible.builtin.command", "ansible.builtin.ping", "one task per module"],
            True,
        ),
        (
            {"longrun.jobs.no_such_module": {}},
            ["unknown module 'longrun.jobs.no_such_module'", "collection is installed"],
            True,
        ),
        (
            {"ansible.builtin.command": "true", "retries_forever": 3},
            ["unknown key(s) retries_forever"],
            True,
        ),
        (
            {"no_such_a": 1, "no_such_b": 2},
            ["no known module among the keys no_such_a, no_such_b"],
            True,
        ),
        (
            {"grace": 3},
            ["no module to run was given"],
            True,
        ),
        (
            {},
            ["no module to run was given"],
            True,
        ),
        (
            {"ansible.builtin.command": ["echo", "hi"]},
            ["the arguments of ansible.builtin.command", "string (free form) or a dictionary", "not list"],
            False,
        ),
        (
            {"ansible.builtin.copy": {"src": "a", "dest": "/tmp/b"}},
            ["ansible.builtin.copy", "controller-side action plugin", "run it as a plain task"],
            False,
        ),
        (
            {"template": {"src": "a.j2", "dest": "/tmp/b"}},
            ["template", "controller-side action plugin"],
            False,
        ),
    ],
    ids=[
        "two-modules",
        "unknown-module",
        "unknown-extra-key",
        "only-unknown-keys",
        "no-module",
        "empty",
        "list-args",
        "copy-action",
        "template-action",
    ],
)
def test_parse_run_request_refuses(args, fragments, names_allowed_keys):
    with pytest.raises(AnsibleActionFail) as exc_info:
        _parse(args)

    message = exc_info.value.message
    for fragment in fragments:
        assert fragment in message
    if names_allowed_keys:
        assert allowed_keys_text() in message
    assert "\n" not in message


def test_allowed_keys_text_names_the_options():
    text = allowed_keys_text()

    assert "exactly one module" in text
    assert "grace" in text
    assert "\n" not in text


def test_parse_run_request_reports_unparsable_module_args():
    with pytest.raises(AnsibleActionFail) as exc_info:
        _parse({"ansible.builtin.command": "echo 'unterminated"})

    assert "cannot parse the arguments of ansible.builtin.command" in exc_info.value.message
    assert "\n" not in exc_info.value.message
