# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Transparent mode: ansible-core's own normal and command actions, with their async tasks run as longrun jobs.

The action plugins in the collection's ``transparent/action_plugins`` dir take the names
``normal``, ``command``, ``uri`` and ``async_status``. With that dir on the action plugin path, core
finds them first for ``ansible.legacy.normal`` (every module without an action plugin of its
own), ``ansible.legacy.command`` (``command:``, ``shell:`` and ad hoc commands), ``ansible.legacy.uri`` and
``ansible.legacy.async_status`` (``async_status:`` and core's own poller). This module is
imported for every task those names serve, so it stays light: the job code is imported only
for a task that runs as a job.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import typing as t

import ansible.plugins.action

# The dir that holds the plugins named above, in the installed collection.
TRANSPARENT_ACTION_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "transparent", "action_plugins"
)
_STOCK_ACTION_DIR = os.path.dirname(os.path.abspath(ansible.plugins.action.__file__))


def stock_action(name: str) -> type:
    """ansible-core's own action plugin ``name``, loaded from its file.

    Core imports a legacy action plugin as ``ansible.plugins.action.<name>``, the import name
    of the builtin one, which ours then hold: the builtin is loaded by path under a name of its own.
    """
    module_name = f"_longrun_stock_action_{name}"
    module = sys.modules.get(module_name)
    if module is None:
        path = os.path.join(_STOCK_ACTION_DIR, f"{name}.py")
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None or not os.path.isfile(path):
            raise ImportError(f"ansible-core's own action plugin {name} is missing from {_STOCK_ACTION_DIR}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return t.cast(type, module.ActionModule)


def apply_builtin_module_defaults(action: t.Any, name: str) -> None:
    """Put the task's module_defaults for ``ansible.builtin.<name>`` under its args, as core does without the mode.

    Core picks a task's module_defaults by the action plugin the task resolves to. ``command:``,
    ``uri:`` and ``async_status:`` resolve to the plugins of this dir, so defaults written for the
    builtin's FQCN would be missed; those written for the short name are in the args already, and
    the args keep what they hold. Tasks that reach the plugin from another action (shell runs
    command) resolve to that action, whose defaults core applied.
    """
    task = action._task
    if not task.module_defaults or task.resolved_action not in (name, f"ansible.legacy.{name}"):
        return
    # pylint: disable=import-outside-toplevel
    from ansible_collections.longrun.jobs.plugins.plugin_utils._module_resolution import with_module_defaults

    task.args = with_module_defaults(action, f"ansible.builtin.{name}", task.args)


def runs_as_job(action: t.Any) -> bool:
    """Whether the task of ``action`` runs as a longrun job rather than through core's own code.

    That is an async task (async > 0) on a POSIX shell whose connection has no async of its own;
    a task without async, a Windows host, or a negative async (core's business) stays stock.
    """
    async_val = action._task.async_val
    if not isinstance(async_val, int) or async_val <= 0:
        return False
    connection = action._connection
    if getattr(connection, "has_native_async", False):
        return False
    return getattr(connection._shell, "SHELL_FAMILY", None) == "sh"


def run_as_job(action: t.Any, tmp: t.Any, task_vars: t.Optional[dict], *, module_name: str) -> dict:
    """Run the task's module with the task's arguments as a job, the way longrun.jobs.run would."""
    # pylint: disable=import-outside-toplevel
    # Only a task that runs as a job pays for the job code.
    from ansible_collections.longrun.jobs.plugins.module_utils._timing import DEFAULT_GRACE
    from ansible_collections.longrun.jobs.plugins.plugin_utils._job_task import JobTask
    from ansible_collections.longrun.jobs.plugins.plugin_utils._run_request import RunRequest

    job = JobTask(action, announce_verbosity=1, hand_over_at_task_timeout=True)

    def prepare() -> t.Tuple[RunRequest, int]:
        # Core has put the task's module_defaults into its args already, as it does for stock.
        return RunRequest(module_name=module_name, module_args=dict(action._task.args), options={}), DEFAULT_GRACE

    return job.run(tmp, task_vars or {}, prepare)
