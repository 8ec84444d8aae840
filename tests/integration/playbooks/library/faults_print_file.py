# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test module: returns a file's bytes as stdout, decoded as ansible.builtin.command decodes output.

ansible.builtin.command needs about a minute to collect 50 MB from a child process;
this module makes the same result in a second, so the fault suite stays short.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"path": {"type": "path", "required": True}})
    with open(module.params["path"], "rb") as handle:
        data = handle.read()
    # surrogateescape, as run_command decodes with errors="surrogate_or_strict".
    module.exit_json(changed=False, rc=0, stdout=data.decode("utf-8", "surrogateescape"), stderr="")


if __name__ == "__main__":
    main()
