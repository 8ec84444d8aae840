# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module that core would run for a wrapped module, and its arguments.

Core's task executor puts the task's module_defaults under the arguments of the
module a task names. The action plugins of package, service and dnf (yum is a
redirect to dnf) then pick the module that does the work, a backend, from an
option or the host's facts, and package and service add that backend's
module_defaults. A job gets the same module and arguments.
"""

from __future__ import annotations

import dataclasses
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest

try:  # ansible-core 2.19 and later
    from ansible.executor.module_common import _apply_action_arg_defaults
    get_action_args_with_defaults = None
except ImportError:  # ansible-core 2.18
    from ansible.executor.module_common import get_action_args_with_defaults
    _apply_action_arg_defaults = None

display = Display()

PACKAGE = "ansible.builtin.package"
SERVICE = "ansible.builtin.service"
DNF = "ansible.builtin.dnf"
# Backends that core runs as ansible.legacy.<name>, so that a library/ module may override them.
_BUILTIN_SERVICE_MANAGERS = frozenset(("openwrt_init", "service", "systemd", "sysvinit"))
_SERVICE_UNUSED_PARAMS = {"systemd": ("pattern", "runlevel", "sleep", "arguments", "args")}
_DNF_BACKENDS = frozenset(("yum", "yum4", "dnf", "dnf4", "dnf5"))


def with_module_defaults(action: t.Any, fqcn: str, module_args: dict) -> dict:
    """module_args over the task's module_defaults for fqcn: its groups' defaults, then its own."""
    task = action._task
    if not task.module_defaults:
        return dict(module_args)
    if _apply_action_arg_defaults is not None:
        return dict(_apply_action_arg_defaults(fqcn, task, module_args, action._templar))
    return dict(get_action_args_with_defaults(
        fqcn, module_args, task.module_defaults, action._templar, action_groups=task._parent._play._action_groups,
    ))


def resolve_wrapped_module(action: t.Any, request: RunRequest, task_vars: dict) -> RunRequest:
    """The request with module_defaults applied and, for package, service and dnf, the backend picked."""
    module_args = with_module_defaults(action, request.defaults_name or request.module_name, request.module_args)
    resolved = dataclasses.replace(request, module_args=module_args)
    picker = _BACKEND_PICKERS.get(request.module_name)
    if picker is None:
        return resolved
    module_name, module_args = picker(action, dict(module_args), task_vars)
    display.vvvv(f"longrun: running {module_name} as the backend of {request.module_name}")
    return dataclasses.replace(resolved, module_name=module_name, module_args=module_args, defaults_name=module_name)


def _fact(action: t.Any, task_vars: dict, name: str) -> t.Optional[str]:
    """A fact from the host's facts, or from a minimal fact gathering once per action."""
    value = (task_vars.get("ansible_facts") or {}).get(name)
    if value:
        return str(value)
    gathered = getattr(action, "_longrun_gathered_facts", None)
    if gathered is None:
        facts = action._execute_module(
            module_name="ansible.legacy.setup",
            module_args={"gather_subset": "!all", "filter": ["ansible_pkg_mgr", "ansible_service_mgr"]},
            task_vars=task_vars,
        )
        if facts.get("failed"):
            raise AnsibleActionFail(
                f"cannot gather the facts that pick the module's backend: {facts.get('msg')}; gather facts first, "
                "or name the backend with the module's use option"
            )
        gathered = facts.get("ansible_facts") or {}
        setattr(action, "_longrun_gathered_facts", gathered)
    value = gathered.get(f"ansible_{name}")
    return str(value) if value else None


def _has_module(action: t.Any, name: str) -> bool:
    return bool(action._shared_loader_obj.module_loader.has_plugin(name, collection_list=action._task.collections))


def _resolved_fqcn(action: t.Any, name: str) -> str:
    context = action._shared_loader_obj.module_loader.find_plugin_with_context(
        name, collection_list=action._task.collections
    )
    return context.resolved_fqcn if context.resolved else name


def _package_backend(action: t.Any, module_args: dict, task_vars: dict) -> t.Tuple[str, dict]:
    backend = module_args.pop("use", "auto")
    if backend == "auto":
        backend = task_vars.get("ansible_package_use") or _fact(action, task_vars, "pkg_mgr")
    if not backend or backend == "auto":
        raise AnsibleActionFail(
            f"{PACKAGE} could not detect which package manager to use: gather facts, or set its use option "
            "(or ansible_package_use)"
        )
    backend = str(backend)
    if not _has_module(action, backend):
        raise AnsibleActionFail(f"{PACKAGE} found no module for the package manager {backend!r}: set its use option")
    module_args = with_module_defaults(action, _resolved_fqcn(action, backend), module_args)
    # Imported here: the facts package costs every worker that loads the run action about 25 ms.
    from ansible.module_utils.facts.system.pkg_mgr import PKG_MGRS  # pylint: disable=import-outside-toplevel

    if backend in {manager["name"] for manager in PKG_MGRS}:
        backend = "ansible.legacy." + backend
    return backend, module_args


def _service_backend(action: t.Any, module_args: dict, task_vars: dict) -> t.Tuple[str, dict]:
    backend = str(module_args.pop("use", "auto")).lower()
    if backend == "auto":
        backend = _fact(action, task_vars, "service_mgr") or "auto"
    if backend == "auto" or not _has_module(action, backend):
        backend = "service"
    for unused in _SERVICE_UNUSED_PARAMS.get(backend, ()):
        if unused in module_args:
            del module_args[unused]
            display.warning(f'Ignoring "{unused}" as it is not used in "{backend}"')
    module_args = with_module_defaults(action, _resolved_fqcn(action, backend), module_args)
    if backend in _BUILTIN_SERVICE_MANAGERS:
        backend = "ansible.legacy." + backend
    return backend, module_args


def _dnf_backend(action: t.Any, module_args: dict, task_vars: dict) -> t.Tuple[str, dict]:
    if "use" in module_args and "use_backend" in module_args:
        raise AnsibleActionFail(f"{DNF}: parameters are mutually exclusive: use, use_backend")
    backend = str(module_args.pop("use", None) or module_args.pop("use_backend", None) or "auto")
    module_args.pop("use_backend", None)
    if backend in ("yum", "auto"):
        backend = str((task_vars.get("ansible_facts") or {}).get("pkg_mgr") or backend)
    if backend not in _DNF_BACKENDS:
        backend = _fact(action, task_vars, "pkg_mgr") or "auto"
    if backend not in _DNF_BACKENDS:
        raise AnsibleActionFail(
            f"{DNF} could not detect which major revision of dnf is in use (the package manager is {backend}): "
            "set its use_backend option to dnf4 or dnf5"
        )
    if backend in ("yum4", "dnf4"):
        backend = "dnf"
    backend = "ansible.legacy." + backend
    if not _has_module(action, backend):
        raise AnsibleActionFail(f"{DNF} found no module for the backend {backend}: set use_backend to dnf4 or dnf5")
    return backend, module_args


_BACKEND_PICKERS: t.Dict[str, t.Callable[[t.Any, dict, dict], t.Tuple[str, dict]]] = {
    PACKAGE: _package_backend,
    SERVICE: _service_backend,
    DNF: _dnf_backend,
}
