# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Building the payload of the wrapped module on the controller, across core versions."""

from __future__ import annotations

import base64
import dataclasses
import json
import shlex
import typing as t

from ansible.errors import AnsibleActionFail


@dataclasses.dataclass
class ModulePayload:
    style: str
    interpreter: str
    payload_b64: str
    args_data: t.Optional[str]


def build_module_payload(action: t.Any, module_name: str, module_args: dict, task_vars: dict) -> ModulePayload:
    """Build the module as Ansible would run it, to be shipped in the launch request."""
    built = action._configure_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
    if len(built) == 4:  # ansible-core 2.18: (style, shebang, data, path)
        style, shebang, data, _path = built
    else:
        bits = built[0]
        style, shebang, data = bits.module_style, bits.shebang, bits.b_module_data
    if isinstance(data, str):
        data = data.encode("utf-8")
    interpreter = (shebang or "").replace("#!", "", 1).strip()
    if style == "binary":
        interpreter = "binary"
    elif not interpreter:
        raise AnsibleActionFail(f"module {module_name} has no interpreter line, so it cannot run as a job")
    args_data = None
    if style == "old":
        args_data = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in module_args.items())
    elif style in ("non_native_want_json", "binary"):
        args_data = json.dumps(module_args, default=str)
    return ModulePayload(
        style=style,
        interpreter=interpreter,
        payload_b64=base64.b64encode(data).decode("ascii"),
        args_data=args_data,
    )
