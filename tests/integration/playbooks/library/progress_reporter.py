# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test module: reports progress on the descriptor the supervisor gave it, and has a child of its own report too."""

from __future__ import annotations

import os
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"go_file": {"type": "path", "required": True}})
    fd = int(os.environ["LONGRUN_PROGRESS_FD"])
    os.write(fd, b'{"percent": 10, "msg": "module started", "current": 1, "total": 10}\n')
    # The child inherits the descriptor as the module got it.
    child = subprocess.run(
        ["sh", "-c", 'echo \'{"percent": 30, "msg": "from the child"}\' >&"$LONGRUN_PROGRESS_FD"'],
        pass_fds=(fd,), check=False,
    )
    os.write(fd, b"{this is not json\n")
    while not os.path.exists(module.params["go_file"]):
        time.sleep(0.1)
    os.write(fd, b'{"current": 10, "total": 10, "msg": "module done"}\n')
    module.exit_json(changed=False, child_rc=child.returncode)


if __name__ == "__main__":
    main()
