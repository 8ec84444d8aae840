# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test module: returns the arguments it was given, as a package or service backend or a defaults target."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={name: {"type": "str"} for name in ("name", "state", "chdir", "msg", "extra")},
        supports_check_mode=True,
    )
    module.exit_json(changed=False, echoed=module.params)


if __name__ == "__main__":
    main()
