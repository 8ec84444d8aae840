# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test module: ends in one of the ways whose task result stock async and longrun must agree on.

case=module_failed  fail_json with a message, rc, stdout and stderr
case=raises         an unhandled exception
case=no_json        plain text on stdout and stderr, exit code 1
case=stderr         success, with a line on stderr
case=trailing_text  a success result followed by a line of text that names the tag
case=trailing_json  a success result followed by a failure result, as when a broad except swallows exit_json
"""

from __future__ import annotations

import sys

from ansible.module_utils.basic import AnsibleModule

CASES = ("module_failed", "raises", "no_json", "stderr", "trailing_text", "trailing_json")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "case": {"type": "str", "required": True, "choices": list(CASES)},
            # Tells apart the warnings of two runs, which Ansible would otherwise show once.
            "tag": {"type": "str", "default": ""},
        }
    )
    case = module.params["case"]
    if case == "module_failed":
        module.fail_json(msg="the module's own message", rc=3, stdout="some output", stderr="some error")
    if case == "raises":
        raise RuntimeError("boom from the module")
    if case == "no_json":
        print("plain text, no JSON")
        sys.stderr.write("an error on stderr\n")
        sys.exit(1)
    if case == "stderr":
        sys.stderr.write("a note on stderr\n")
        module.exit_json(changed=True, msg="done")
    if case == "trailing_text":
        try:
            module.exit_json(changed=True, msg="done")
        finally:
            print(f"trailing text from {module.params['tag']}")
    try:
        module.exit_json(changed=True, msg="done")
    except SystemExit:
        module.fail_json(msg="exit_json was swallowed")


if __name__ == "__main__":
    main()
