# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test module: starts child processes that read all they can from the stdin they inherit."""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule

# Seeks back to the start of its stdin first: a payload file would be read whole.
SEEKING_READER = r"""
import os, sys
try:
    os.lseek(0, 0, os.SEEK_SET)
except OSError:
    pass
with open(sys.argv[1], "ab") as dump:
    while True:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        dump.write(chunk)
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "password": {"type": "str", "required": True, "no_log": True},
            "dump": {"type": "path", "required": True},
        }
    )
    dump = module.params["dump"]
    seeking = module.run_command([sys.executable, "-c", SEEKING_READER, dump])
    shell = module.run_command(["sh", "-c", 'cat <&0 >> "$1"', "sh", dump])
    module.exit_json(changed=False, seeking_rc=seeking[0], shell_rc=shell[0], stderr=seeking[2] + shell[2])


if __name__ == "__main__":
    main()
