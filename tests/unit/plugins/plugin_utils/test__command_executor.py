# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which command jobs the executor runs, and what the installed command module tells it."""

from __future__ import annotations

import importlib.util
import json

import ansible
import pytest

from ansible_collections.longrun.jobs.plugins.action.run import ActionModule as RunAction
from ansible_collections.longrun.jobs.plugins.module_utils._job import command_exec as _command_exec
from ansible_collections.longrun.jobs.plugins.plugin_utils import _command_executor as _executor

pytestmark = pytest.mark.usefixtures("collection_loader")

CORE = tuple(int(part) for part in ansible.__version__.split(".")[:2])

# The main() of ansible-core 2.18's command module, as far as the executor reads it.
OLD_MODULE = '''
def main():
    module = AnsibleModule(
        argument_spec=dict(
            _raw_params=dict(),
            _uses_shell=dict(type='bool', default=False),
            argv=dict(type='list', elements='str'),
            chdir=dict(type='path'),
            stdin=dict(required=False),
        ),
    )
    if chdir:
        try:
            os.chdir(chdir)
        except (IOError, OSError) as e:
            r['msg'] = 'Unable to change directory before execution: %s' % to_text(e)
            module.fail_json(**r)
    shoulda = "Did"
    r['msg'] = "%s not run command since '%s' exists" % (shoulda, creates)
    r['stdout'] = "skipped, since %s exists" % creates
    r['msg'] = "%s not run command since '%s' does not exist" % (shoulda, removes)
    r['stdout'] = "skipped, since %s does not exist" % removes
    if r['rc'] != 0:
        r['msg'] = 'non-zero return code'
        module.fail_json(**r)
'''


def installed_source() -> str:
    spec = importlib.util.find_spec("ansible.modules.command")
    with open(spec.origin, encoding="utf-8") as handle:
        return handle.read()


def test_the_installed_module_is_read():
    facts = _executor.installed_command_module()

    assert facts is not None
    assert facts.spec["_uses_shell"] == {"type": "bool", "default": False}
    assert facts.spec["argv"] == {"type": "list", "elements": "str"}
    assert facts.spec["chdir"] == {"type": "path"}
    assert ("cmd" in facts.spec) is (CORE >= (2, 19))
    assert facts.nonzero_msg in ("non-zero return code", "The command exited with a non-zero return code.")
    assert facts.chdir_exception is (CORE >= (2, 19))


def test_an_older_module_is_read_with_its_own_messages():
    facts = _executor.read_command_module(OLD_MODULE, "/x/command.py")

    assert facts is not None
    assert set(facts.spec) == {"_raw_params", "_uses_shell", "argv", "chdir", "stdin"}
    assert facts.spec["stdin"] == {"required": False}
    assert facts.nonzero_msg == "non-zero return code"
    assert (facts.chdir_msg, facts.chdir_msg_has_error, facts.chdir_exception) == (
        "Unable to change directory before execution: %s", True, False,
    )


@pytest.mark.parametrize(
    "change",
    [
        ("r['msg'] = 'non-zero return code'", "r['msg'] = message()"),
        ("argument_spec=dict(", "argument_spec=SPEC, other=dict("),
        ("_raw_params=dict(),", "_raw_params=dict(default=compute()),"),
        ("'Unable to change directory before execution: %s' % to_text(e)", "describe(e)"),
        ("skipped, since %s exists", "skipped because %s exists"),
        ("def main():", "def other():"),
    ],
)
def test_a_module_that_looks_otherwise_is_not_read(change):
    assert _executor.read_command_module(OLD_MODULE.replace(*change), "/x/command.py") is None


def test_the_placeholder_is_the_same_on_both_sides():
    assert _executor.CHDIR_ERROR_PLACEHOLDER == _command_exec.CHDIR_ERROR_PLACEHOLDER


@pytest.mark.skipif(CORE < (2, 19), reason="ansible-core 2.19 and later put an exception summary in the result")
def test_the_chdir_exception_summary_is_built_by_this_core():
    template = _executor.chdir_exception_template("Unable to change directory before execution.")

    assert template["__ansible_type"] == "ErrorSummary"
    assert template["event"]["msg"] == "Unable to change directory before execution."
    assert template["event"]["chain"]["event"]["msg"] == _executor.CHDIR_ERROR_PLACEHOLDER


@pytest.fixture
def action(make_action):
    made = make_action(RunAction, "longrun.jobs.run", {}, async_val=10, poll=0)
    try:
        yield made
    finally:
        made.cleanup(force=True)


def parameters(action, task_vars, module_args, module="ansible.builtin.command", **extra_vars):
    args = dict(module_args)
    action._update_module_args(module, args, task_vars)  # pylint: disable=protected-access
    return _executor.executor_parameters(action, module, args, dict(task_vars, **extra_vars))


def test_a_plain_command_goes_to_the_executor(action, task_vars):
    params = parameters(action, task_vars, {"_raw_params": "echo hi", "stdin_add_newline": "no"})

    assert params is not None
    assert params["params"]["_raw_params"] == "echo hi"
    assert params["params"]["stdin_add_newline"] is False
    assert params["params"]["expand_argument_vars"] is True
    assert params["path_keys"] == ["chdir", "creates", "removes"]
    assert params["shell_executable"] == "/bin/sh"
    json.dumps(params)


def test_the_shell_and_legacy_names_go_to_the_executor(action, task_vars):
    params = parameters(action, task_vars, {"_raw_params": "echo hi | cat", "_uses_shell": True},
                        module="ansible.legacy.command")
    assert params["params"]["_uses_shell"] is True


@pytest.mark.parametrize(
    ("module_args", "extra_vars"),
    [
        ({"_raw_params": "echo hi"}, {"longrun_command_executor": False}),
        ({"_raw_params": "echo hi"}, {"longrun_command_executor": "no"}),
        ({"_raw_params": "echo hi", "executable": "/bin/bash"}, {}),
        ({"_raw_params": "echo hi", "argv": ["echo"]}, {}),
        ({"_raw_params": "   "}, {}),
        ({"argv": []}, {}),
        ({"argv": ["echo", 1]}, {}),
        ({"_raw_params": "echo", "stdin": 5}, {}),
        ({"_raw_params": "echo", "strip_empty_ends": "maybe"}, {}),
        ({"_raw_params": "echo", "unknown_option": 1}, {}),
        ({}, {}),
    ],
)
def test_anything_else_runs_the_module(action, task_vars, module_args, extra_vars):
    assert parameters(action, task_vars, module_args, **extra_vars) is None


def test_another_module_runs_as_a_module(action, task_vars):
    assert parameters(action, task_vars, {"msg": "x"}, module="ansible.builtin.debug") is None


def test_check_mode_runs_the_module(make_action, task_vars):
    checking = make_action(RunAction, "longrun.jobs.run", {}, async_val=10, poll=0, check_mode=True)
    try:
        assert parameters(checking, task_vars, {"_raw_params": "echo hi"}) is None
    finally:
        checking.cleanup(force=True)


def test_the_decline_sentence_is_the_same_on_both_sides():
    assert _executor.DECLINED == _command_exec.DECLINED


@pytest.mark.parametrize("wanted", [True, False])
def test_the_escape_hatch_is_rendered(action, task_vars, wanted):
    action._templar.available_variables = dict(task_vars, executor_wanted=wanted)  # pylint: disable=protected-access

    params = parameters(
        action, task_vars, {"_raw_params": "echo hi"}, longrun_command_executor=trusted("{{ executor_wanted }}")
    )

    assert (params is not None) is wanted


def trusted(text: str) -> str:
    """Text from a playbook, which ansible-core 2.19 and later render (plain strings are not trusted)."""
    try:
        from ansible.template import trust_as_template  # pylint: disable=import-outside-toplevel
    except ImportError:  # ansible-core 2.18 renders any string
        return text
    return trust_as_template(text)
