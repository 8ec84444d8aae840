# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Time the loading of the actions that transparent mode overrides, in fresh forked workers.

ansible-playbook forks a worker for each task and host, and the worker loads the task's action
plugin: ``ansible.legacy.normal`` for a module without one of its own, ``ansible.legacy.command``
behind ``shell:``. This is the only work that transparent mode adds to a task without async,
besides one check of ``async``. bench.py runs this script with transparent mode off and on.

Usage: python action_load_time.py COUNT; prints a JSON list of COUNT milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ansible.plugins.loader import action_loader, init_plugin_loader

ACTIONS = ("ansible.legacy.normal", "ansible.legacy.command")


def time_one_worker() -> float:
    """Milliseconds that a new worker takes to load both actions, as a task's worker loads one of them."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        started = time.perf_counter()
        for name in ACTIONS:
            if action_loader.get(name, class_only=True) is None:
                os._exit(1)
        os.write(write_fd, repr(1000 * (time.perf_counter() - started)).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        reply = pipe.read()
    status = os.waitpid(pid, 0)[1]
    if status != 0 or not reply:
        raise SystemExit(f"a worker could not load {', '.join(ACTIONS)}")
    return float(reply)


def main() -> int:
    count = int(sys.argv[1])
    # As ansible-playbook has done before it forks workers: the loader set up, its search of the legacy
    # action path done (for any task named by short name) and the action base class imported.
    init_plugin_loader()
    action_loader.get("ansible.legacy.debug", class_only=True)
    print(json.dumps([time_one_worker() for worker in range(count)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
