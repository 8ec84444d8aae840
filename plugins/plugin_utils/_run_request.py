# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parsing the arguments of longrun.jobs.run: one wrapped module plus run options."""

from __future__ import annotations

import dataclasses
import typing as t

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.parsing.mod_args import ModuleArgsParser

from ansible_collections.longrun.jobs.plugins.plugin_utils._action_result import action_failure
from ansible_collections.longrun.jobs.plugins.plugin_utils._selection import type_name
from ansible_collections.longrun.jobs.plugins.plugin_utils._specs import run_options_spec

# Builtin modules whose action plugin only runs the module, so running the
# module on its own is what the user asked for.
_MODULE_BACKED_ACTIONS = frozenset("ansible.builtin." + name for name in ("command", "uri"))
# Builtin actions that only pick the module that does the work (a backend), as
# _module_resolution does for a job. yum is a redirect to the dnf action.
BACKEND_PICKING_ACTIONS = frozenset("ansible.builtin." + name for name in ("package", "service", "dnf"))
_SHELL_MODULES = frozenset(("ansible.builtin.shell", "ansible.legacy.shell"))


@dataclasses.dataclass
class RunRequest:
    module_name: str
    module_args: dict
    options: dict
    # The module whose module_defaults apply: module_name, or shell for a shell command run by command.
    defaults_name: str = ""


def allowed_keys_text() -> str:
    options = ", ".join(sorted(run_options_spec()))
    return f"exactly one module (for example ansible.builtin.command) and the options {options}"


def parse_run_request(
    args: t.Mapping[str, t.Any],
    *,
    module_loader: t.Any,
    action_loader: t.Any,
    collection_list: t.Optional[t.List[str]],
) -> RunRequest:
    """Split the task args into the wrapped module, its args and our options, or raise AnsibleActionFail."""
    option_names = set(run_options_spec())
    options = {key: value for key, value in args.items() if key in option_names}
    candidates = [key for key in args if key not in option_names]
    if not candidates:
        raise AnsibleActionFail(f"no module to run was given: longrun.jobs.run takes {allowed_keys_text()}")
    modules = {}
    unknown = []
    for key in candidates:
        context = module_loader.find_plugin_with_context(key, collection_list=collection_list)
        if context.resolved:
            modules[key] = context.resolved_fqcn
            continue
        # An action without a module of its name (yum) may still pick a module that does the work.
        action_context = action_loader.find_plugin_with_context(key, collection_list=collection_list)
        if action_context.resolved and action_context.resolved_fqcn in BACKEND_PICKING_ACTIONS:
            modules[key] = action_context.resolved_fqcn
        else:
            unknown.append(key)
    if len(modules) > 1:
        raise AnsibleActionFail(
            f"more than one module was given ({', '.join(sorted(modules))}): longrun.jobs.run takes "
            f"{allowed_keys_text()}; use one task per module"
        )
    if not modules:
        if len(unknown) == 1:
            raise AnsibleActionFail(
                f"unknown module {unknown[0]!r}: check its name and that its collection is installed; "
                f"longrun.jobs.run takes {allowed_keys_text()}"
            )
        raise AnsibleActionFail(
            f"no known module among the keys {', '.join(sorted(map(str, unknown)))}: longrun.jobs.run takes "
            f"{allowed_keys_text()}"
        )
    if unknown:
        raise AnsibleActionFail(
            f"unknown key(s) {', '.join(sorted(map(str, unknown)))}: longrun.jobs.run takes {allowed_keys_text()}"
        )
    key, fqcn = next(iter(modules.items()))
    value = args[key]
    if value is None:
        value = {}
    if not isinstance(value, (str, dict)):
        raise AnsibleActionFail(
            f"the arguments of {key} must be a string (free form) or a dictionary, not {type_name(value)}"
        )
    try:
        _action, module_args, _delegate = ModuleArgsParser(task_ds={key: value}, collection_list=collection_list).parse(
            skip_action_validation=True
        )
    except AnsibleError as exc:
        raise action_failure(f"cannot parse the arguments of {key}: {exc.message}") from None
    module_args = dict(module_args)
    defaults_name = fqcn
    if fqcn in _SHELL_MODULES:
        fqcn = "ansible.builtin.command"
        module_args["_uses_shell"] = True
    elif (
        fqcn not in _MODULE_BACKED_ACTIONS | BACKEND_PICKING_ACTIONS
        and action_loader.has_plugin(fqcn, collection_list=collection_list)
    ):
        raise AnsibleActionFail(
            f"{key} works through a controller-side action plugin, so it cannot run as a job on the target: "
            "run it as a plain task, or wrap the module that does the work"
        )
    return RunRequest(module_name=fqcn, module_args=module_args, options=options, defaults_name=defaults_name)
