# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a command or shell job can run on our own executor, and the parameters it then gets.

The executor (module_utils/_job/command_exec.py) runs the command itself, its output going straight
to the job's files, and writes the result that ansible.builtin.command would have returned. That
result must be the one of the ansible-core on this controller, so what differs between core
versions (the argument spec, the messages) is read from the installed module's source, never from
a table; when that source does not look as expected, or the task asks for anything the executor
does not do, the job runs the module as before.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import json
import typing as t

from ansible.module_utils.parsing.convert_bool import BOOLEANS, boolean
from ansible.utils.display import Display

display = Display()

ESCAPE_HATCH_VAR = "longrun_command_executor"
COMMAND_MODULES = frozenset(("ansible.builtin.command", "ansible.legacy.command"))
SUPPORTED_OPTIONS = frozenset((
    "_raw_params", "cmd", "argv", "_uses_shell", "chdir", "executable", "creates", "removes", "stdin",
    "stdin_add_newline", "strip_empty_ends", "expand_argument_vars",
))
COMMAND_KEYS = ("_raw_params", "cmd", "argv")
# Stands for the text of the OSError of a failed chdir in the exception summary built here.
CHDIR_ERROR_PLACEHOLDER = "@@longrun:chdir-error@@"
# The sentences of the creates/removes skips: the executor words them so, and checks that the module still does.
SKIP_SENTENCES = (
    "%s not run command since '%s' exists",
    "skipped, since %s exists",
    "%s not run command since '%s' does not exist",
    "skipped, since %s does not exist",
    "Did",
)
# Must match module_utils/_job/command_exec.DECLINED: the target leaves the job to the module.
DECLINED = "the command executor leaves this job to the module"
_TRACEBACK_REASON = "The above exception was the direct cause of the following error:"


@dataclasses.dataclass(frozen=True)
class CommandModuleFacts:
    """What the installed ansible.builtin.command does, read from its source."""

    path: str
    # Option name -> {"type": ..., "default": ..., "elements": ...} as in the module's argument_spec.
    spec: t.Dict[str, t.Dict[str, t.Any]]
    nonzero_msg: str
    # The message of a failed chdir: plain, or with one %s for the error's text.
    chdir_msg: str
    chdir_msg_has_error: bool
    # The module passes the OSError to fail_json (ansible-core 2.19 and later): the result has an exception summary.
    chdir_exception: bool


def executor_parameters(action: t.Any, module_name: str, module_args: dict, task_vars: dict) -> t.Optional[dict]:
    """The executor's parameters for this job, or None when it runs the module (the reason is shown at -vvv)."""
    reason = _refusal(action, module_name, module_args, task_vars)
    if isinstance(reason, str):
        display.vvv(f"longrun: {module_name} runs as a module, not on the command executor: {reason}")
        return None
    return reason


def _refusal(action: t.Any, module_name: str, module_args: dict, task_vars: dict) -> t.Union[str, dict]:
    wanted = task_vars.get(ESCAPE_HATCH_VAR, True)
    if isinstance(wanted, str):
        # Task vars reach the action unrendered: "{{ ... }}" is rendered here.
        wanted = action._templar.template(wanted)
    try:
        if not boolean(wanted, strict=True):
            return f"{ESCAPE_HATCH_VAR} is false"
    except TypeError:
        return f"{ESCAPE_HATCH_VAR} is not a boolean ({wanted!r})"
    if module_name not in COMMAND_MODULES:
        return "not the command module"
    facts = installed_command_module()
    if facts is None:
        return "the installed ansible.builtin.command does not look as the executor expects"
    if _module_path(action, module_name) != facts.path:
        return f"{module_name} is not the command module of ansible-core"
    if module_args.get("_ansible_check_mode"):
        return "check mode"
    user_args = {key: value for key, value in module_args.items() if not key.startswith("_ansible_")}
    unsupported = sorted(key for key in user_args if key not in SUPPORTED_OPTIONS or key not in facts.spec)
    if unsupported:
        return f"options it does not take: {', '.join(unsupported)}"
    params = _validated(facts, user_args)
    if isinstance(params, str):
        return params
    if not params["_uses_shell"] and params["executable"] is not None:
        return "executable without the shell (the module warns and ignores it)"
    tracebacks = module_args.get("_ansible_tracebacks_for")
    if tracebacks is not None:
        if "error" in tracebacks:
            return "error tracebacks are on"
    elif params["chdir"] is not None and (
        module_args.get("_ansible_debug") or module_args.get("_ansible_verbosity", 0) >= 3
    ):
        return "a failed chdir would carry a traceback at this verbosity"
    summary = None
    if facts.chdir_exception and params["chdir"] is not None:
        summary = chdir_exception_template(facts.chdir_msg)
        if summary is None:
            return "cannot build the exception summary of a failed chdir"
    return {
        "params": params,
        "path_keys": sorted(key for key, option in facts.spec.items() if option.get("type") == "path"),
        "invocation": _injects_invocation(module_args),
        "shell_executable": _text_or_none(module_args.get("_ansible_shell_executable")),
        "nonzero_msg": facts.nonzero_msg,
        "chdir_msg": facts.chdir_msg,
        "chdir_msg_has_error": facts.chdir_msg_has_error,
        "chdir_exception": summary,
    }


def _text_or_none(value: t.Any) -> t.Optional[str]:
    return None if value is None else str(value)


def _module_path(action: t.Any, module_name: str) -> t.Optional[str]:
    shared = action._shared_loader_obj
    if shared is not None:
        loader = shared.module_loader
    else:
        # pylint: disable-next=import-outside-toplevel
        from ansible.plugins.loader import module_loader as loader
    context = loader.find_plugin_with_context(
        module_name, collection_list=action._task.collections
    )
    return context.plugin_resolved_path if context.resolved else None


def _validated(facts: CommandModuleFacts, user_args: dict) -> t.Union[str, dict]:
    """Every option of the spec with its value as AnsibleModule would hold it (paths not yet expanded), or why not."""
    given = [key for key in COMMAND_KEYS if key in user_args]
    if len(given) != 1:
        return "not exactly one of _raw_params, cmd and argv"
    params: dict = {}
    for name, option in facts.spec.items():
        if name not in user_args:
            params[name] = option.get("default")
            continue
        value = _converted(user_args[name], option)
        if value is None:
            return f"the value of {name} is not one the executor converts as the module would"
        params[name] = value
    command = params[given[0]]
    if (isinstance(command, str) and not command.strip()) or (isinstance(command, list) and not command):
        return "the command is empty"
    return params


def _converted(value: t.Any, option: dict) -> t.Any:
    """The value as the option's type holds it, or None when the module's own checks should judge it."""
    kind = option.get("type", "str")
    if kind in ("str", "path"):
        return str(value) if isinstance(value, str) else None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in BOOLEANS:
            return boolean(value)
        return None
    if kind == "list" and option.get("elements") == "str":
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            return [str(item) for item in value]
        return None
    return None


def _injects_invocation(module_args: dict) -> bool:
    """Whether the module's result would carry invocation: always, or as the controller asks (ansible-core 2.21)."""
    if _basic_asks_to_inject_invocation():
        return bool(module_args.get("_ansible_inject_invocation", False))
    return True


@functools.lru_cache(maxsize=None)
def _basic_asks_to_inject_invocation() -> bool:
    spec = importlib.util.find_spec("ansible.module_utils.basic")
    if spec is None or not spec.origin:
        return False
    with open(spec.origin, encoding="utf-8") as handle:
        return "_ansible_inject_invocation" in handle.read()


@functools.lru_cache(maxsize=None)
def installed_command_module() -> t.Optional[CommandModuleFacts]:
    """The facts of the installed command module, or None when its source is not as expected."""
    try:
        spec = importlib.util.find_spec("ansible.modules.command")
        if spec is None or not spec.origin:
            return None
        with open(spec.origin, encoding="utf-8") as handle:
            return read_command_module(handle.read(), spec.origin)
    except (OSError, SyntaxError, ValueError, ImportError):
        return None


def read_command_module(source: str, path: str) -> t.Optional[CommandModuleFacts]:
    """Read the argument spec and the messages from the source of ansible/modules/command.py."""
    tree = ast.parse(source)
    main = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"), None)
    if main is None:
        return None
    argument_spec = _argument_spec(main)
    nonzero_msg = _nonzero_message(main)
    chdir = _chdir_failure(main)
    constants = {
        node.value for node in ast.walk(main) if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    if argument_spec is None or nonzero_msg is None or chdir is None or not set(SKIP_SENTENCES) <= constants:
        return None
    if not set(COMMAND_KEYS) & set(argument_spec) or "_uses_shell" not in argument_spec:
        return None
    return CommandModuleFacts(path, argument_spec, nonzero_msg, *chdir)


def _call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return ""


def _argument_spec(main: ast.FunctionDef) -> t.Optional[t.Dict[str, t.Dict[str, t.Any]]]:
    for node in ast.walk(main):
        if _call_name(node) != "AnsibleModule":
            continue
        for keyword in t.cast(ast.Call, node).keywords:
            if keyword.arg == "argument_spec" and _call_name(keyword.value) == "dict":
                spec: t.Dict[str, t.Dict[str, t.Any]] = {}
                for option in t.cast(ast.Call, keyword.value).keywords:
                    if option.arg is None or _call_name(option.value) != "dict":
                        return None
                    settings = t.cast(ast.Call, option.value)
                    if settings.args:
                        return None
                    try:
                        spec[option.arg] = {
                            item.arg: ast.literal_eval(item.value) for item in settings.keywords if item.arg is not None
                        }
                    except ValueError:
                        # Not a literal: what the option holds is not known without running the module.
                        return None
                return spec
    return None


def _is_result_key(node: ast.AST, key: str) -> bool:
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and node.slice.value == key
    )


def _message_assigned(body: t.List[ast.stmt]) -> t.Optional[ast.expr]:
    for statement in body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and _is_result_key(statement.targets[0], "msg")
        ):
            return statement.value
    return None


def _nonzero_message(main: ast.FunctionDef) -> t.Optional[str]:
    for node in ast.walk(main):
        if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
            continue
        test = node.test
        if (
            _is_result_key(test.left, "rc")
            and len(test.ops) == 1
            and isinstance(test.ops[0], ast.NotEq)
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == 0
        ):
            value = _message_assigned(node.body)
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return None


def _chdir_failure(main: ast.FunctionDef) -> t.Optional[t.Tuple[str, bool, bool]]:
    """(message, whether it has a %s for the error, whether fail_json gets the exception)."""
    for node in ast.walk(main):
        if not isinstance(node, ast.Try) or len(node.handlers) != 1:
            continue
        if not any(_call_name(call) == "chdir" for statement in node.body for call in ast.walk(statement)):
            continue
        handler = node.handlers[0]
        value = _message_assigned(handler.body)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            message, has_error = value.value, False
        elif (
            isinstance(value, ast.BinOp)
            and isinstance(value.op, ast.Mod)
            and isinstance(value.left, ast.Constant)
            and isinstance(value.left.value, str)
            and value.left.value.count("%s") == 1
        ):
            message, has_error = value.left.value, True
        else:
            return None
        fail_calls = [
            call for statement in handler.body for call in ast.walk(statement) if _call_name(call) == "fail_json"
        ]
        if len(fail_calls) != 1:
            return None
        passes_exception = any(keyword.arg == "exception" for keyword in t.cast(ast.Call, fail_calls[0]).keywords)
        return message, has_error, passes_exception
    return None


def chdir_exception_template(message: str) -> t.Optional[dict]:
    """The exception summary a failed chdir puts in the result, as this core's module encodes it.

    The error's text is CHDIR_ERROR_PLACEHOLDER: the target puts the real one in.
    """
    try:
        # pylint: disable-next=import-outside-toplevel
        from ansible.module_utils import basic

        messages, errors = basic._messages, basic._errors  # pylint: disable=protected-access
        summary = messages.ErrorSummary(
            event=messages.Event(
                msg=message,
                formatted_traceback=None,
                chain=messages.EventChain(
                    msg_reason=errors.MSG_REASON_DIRECT_CAUSE,
                    traceback_reason=_TRACEBACK_REASON,
                    event=errors.EventFactory.from_exception(OSError(CHDIR_ERROR_PLACEHOLDER), False),
                ),
            ),
        )
        json_codecs = basic._json  # pylint: disable=protected-access
        encoder = json_codecs.get_module_encoder("legacy", json_codecs.Direction.MODULE_TO_CONTROLLER)
        template = json.loads(json.dumps(summary, cls=encoder))
    except Exception:  # pylint: disable=broad-except
        # Any core that does not have these pieces as 2.19 to 2.21 do: the module runs instead.
        return None
    return template if CHDIR_ERROR_PLACEHOLDER in json.dumps(template, ensure_ascii=False) else None
