# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
import zlib

from ansible_collections.longrun.jobs.plugins.plugin_utils import _agent_bundle, _target_agent
from ansible_collections.longrun.jobs.plugins.plugin_utils._agent_bundle import (
    ENTRY_MODULE,
    MODULE_UTILS_PACKAGE,
    agent_program,
    agent_source,
    import_closure,
    imported_modules,
)

MU = MODULE_UTILS_PACKAGE


def test_the_closure_holds_what_the_agent_imports_at_the_top_and_inside_functions():
    closure = import_closure()

    # main imports status_request and rounds inside functions, and the supervisor only for a launch.
    for name in (
        ENTRY_MODULE, f"{MU}._agent.status_request", f"{MU}._agent.rounds", f"{MU}._job.record",
        f"{MU}._job.store", f"{MU}._job.kill", f"{MU}._job.housekeeping", f"{MU}._protocol", f"{MU}._timing",
    ):
        assert name in closure, name
    assert any(name.startswith(f"{MU}._job.") and "supervis" in name for name in closure)
    # Every package above a module is there, as a package.
    for package in ("ansible_collections", "ansible_collections.longrun", f"{MU}", f"{MU}._job", f"{MU}._agent"):
        assert closure[package][0] is True, package
    assert closure[ENTRY_MODULE][0] is False


def test_only_what_is_imported_is_bundled():
    """Nothing the agent never imports: the bundle is found, not listed."""
    closure = import_closure()

    assert not [name for name in closure if ".plugin_utils" in name or ".action" in name or ".modules" in name]
    assert f"{MU}._job.record.JobRecord" not in closure


def test_imported_modules_skips_type_checking_blocks_and_sees_function_imports():
    source = (
        "from __future__ import annotations\n"
        "TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n"
        f"    from {MU}._job import kill\n"
        "def later():\n"
        f"    from {MU}._job import proc as _proc\n"
        f"    import {MU}._job.store\n"
        "import os\n"
    )

    found = imported_modules(f"{MU}._agent.main", source)

    assert f"{MU}._job.proc" in found and f"{MU}._job.store" in found
    assert f"{MU}._job.kill" not in found
    assert "os" not in found


def test_imported_modules_reads_multi_line_imports_aliases_and_comments():
    source = (
        f"from {MU}._job import (  # what the launch needs\n"
        "    handshake as _handshake,\n"
        "    spawn,  # the job's process\n"
        ")\n"
        f"import {MU}._timing as _timing, os\n"
        "def f():\n"
        "    if TYPE_CHECKING:\n"
        f"        from {MU}._job import kill\n"
        f"    from {MU}._job import store  # after the block\n"
        '"""A docstring that says: from here on, import nothing."""\n'
    )

    found = set(imported_modules(f"{MU}._agent.main", source))

    assert found == {f"{MU}._job", f"{MU}._job.handshake", f"{MU}._job.spawn", f"{MU}._timing", f"{MU}._job.store"}


def _ast_imported_modules(module: str, source: str) -> set:
    """What the imports of source are by Python's own parser: the reference the line scan must match."""
    package = module.split(".") if (_agent_bundle.source_path(module).name == "__init__.py") else module.split(".")[:-1]
    found = set()
    pending = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        pending.extend(ast.iter_child_nodes(node))
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found.update(name for name in names if _agent_bundle.source_path(name) is not None)
    return found


def test_the_line_scan_finds_what_pythons_parser_finds_in_every_bundled_module():
    closure = import_closure()

    for name, (_is_package, source) in closure.items():
        if source:
            assert set(imported_modules(name, source)) == _ast_imported_modules(name, source), name


def test_relative_imports_resolve_against_the_package():
    found = imported_modules(f"{MU}._agent.main", "from . import rounds\nfrom .._job import record\n")

    assert f"{MU}._agent.rounds" in found
    assert f"{MU}._job.record" in found


def test_bundled_modules_import_only_the_standard_library_and_each_other():
    closure = import_closure()
    foreign = {}
    for name, (_is_package, source) in closure.items():
        for node in ast.walk(ast.parse(source)):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                top = module.split(".")[0]
                if top == "ansible_collections":
                    if module not in closure:
                        foreign.setdefault(name, []).append(module)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    foreign.setdefault(name, []).append(module)
    assert foreign == {}


def test_the_program_is_encoded_once():
    source = zlib.decompress(base64.b64decode(agent_program(), validate=True)).decode("utf-8")

    assert source == agent_source()
    compile(source, "<agent>", "exec")
    # The module sources are plain text in the program, not a second compressed and encoded layer.
    assert "a2b_base64" not in source and "b64decode" not in source.split("_SOURCES")[0]
    assert "def serve(" in source
    assert agent_program() is agent_program()


def test_every_collection_module_the_agent_imports_while_serving_is_in_the_bundle(tmp_path):
    """Run the agent from the work tree, not the bundle: what it imports must all be bundled."""
    request = {"op": "status", "params": {"mode": "list", "_async_dir": str(tmp_path / "async")}}
    root = tmp_path / "collections"
    (root / "ansible_collections" / "longrun").mkdir(parents=True)
    (root / "ansible_collections" / "longrun" / "jobs").symlink_to(_agent_bundle._PLUGINS_DIR.parent)
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"from {ENTRY_MODULE} import main; main()"],
        input=json.dumps(request), capture_output=True, text=True, timeout=30, check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in completed.stderr.splitlines()
        if line.startswith("import time:")
    }
    ours = {name for name in imported if name.startswith("ansible_collections.longrun")}

    assert ours, completed.stderr[-2000:]
    assert ours <= set(import_closure())


def test_the_agent_command_uses_the_bundle():
    assert _target_agent.agent_program is agent_program
