# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The target agent as one Python program: the import closure of its entry point, with an in-memory importer.

The modules bundled are found, not listed: every ``module_utils`` module that the
entry point imports, directly or through others, at the top or inside a function.
A module added to the target side is therefore shipped as soon as something imports it.
"""

from __future__ import annotations

import ast
import base64
import functools
import pathlib
import typing as t
import zlib

COLLECTION_PACKAGE = "ansible_collections.longrun.jobs"
MODULE_UTILS_PACKAGE = f"{COLLECTION_PACKAGE}.plugins.module_utils"
ENTRY_MODULE = f"{MODULE_UTILS_PACKAGE}._agent.main"
_PLUGINS_DIR = pathlib.Path(__file__).resolve().parent.parent

# The importer is duck-typed: subclassing importlib.abc would cost the agent ~20 ms of imports per call.
# Modules are compiled when imported: a status request never compiles the supervisor.
_LOADER = r"""import sys
from importlib.machinery import ModuleSpec
_SOURCES = %(sources)r
class _BundleImporter:
    def find_spec(self, name, path=None, target=None):
        if name in _SOURCES:
            return ModuleSpec(name, self, is_package=_SOURCES[name][0])
        return None
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        is_package, source = _SOURCES[module.__name__]
        if is_package:
            module.__path__ = []
        exec(compile(source, "<longrun.jobs>/" + module.__name__, "exec"), module.__dict__)
sys.meta_path.insert(0, _BundleImporter())
from %(entry)s import main
main()
# The reply is out: skip the interpreter's teardown, which the controller would wait for.
sys.stdout.flush()
sys.stderr.flush()
import os
os._exit(0)
"""


def source_path(module: str) -> t.Optional[pathlib.Path]:
    """The file of a collection module (a package's __init__.py), or None when the name is not ours."""
    prefix = f"{COLLECTION_PACKAGE}.plugins."
    if not module.startswith(prefix):
        return None
    base = _PLUGINS_DIR.joinpath(*module[len(prefix):].split("."))
    if base.is_dir():
        return base / "__init__.py"
    path = base.with_suffix(".py")
    return path if path.is_file() else None


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imported_modules(module: str, source: str) -> t.List[str]:
    """The collection modules that ``source`` (the text of ``module``) imports, wherever the import stands.

    Imports under ``if TYPE_CHECKING:`` are for type checkers only and never run.
    """
    found: t.List[str] = []
    is_package = (source_path(module) or pathlib.Path()).name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    pending: t.List[ast.AST] = [ast.parse(source)]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            continue
        pending.extend(ast.iter_child_nodes(node))
        names: t.List[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # from . import x, from ..y import z: relative to the module's package.
                parts = package[: len(package) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        found.extend(name for name in names if source_path(name) is not None)
    return found


def import_closure(entry: str = ENTRY_MODULE) -> t.Dict[str, t.Tuple[bool, str]]:
    """Every module the entry point can import, and the packages above them: name -> (is package, source)."""
    sources: t.Dict[str, t.Tuple[bool, str]] = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = t.cast(pathlib.Path, source_path(name))
        text = path.read_text("utf-8") if path.is_file() else ""
        sources[name] = (path.name == "__init__.py", text)
        pending.extend(imported_modules(name, text))
    # Parent packages, down from ansible_collections: the importer must find each one.
    for name in list(sources):
        parts = name.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent not in sources:
                path = source_path(parent)
                text = path.read_text("utf-8") if path is not None and path.is_file() else ""
                sources[parent] = (True, text)
    return dict(sorted(sources.items()))


@functools.lru_cache(maxsize=1)
def agent_source() -> str:
    """The agent as plain Python source: what the target runs, and what a kept copy shows."""
    return _LOADER % {"sources": import_closure(), "entry": ENTRY_MODULE}


@functools.lru_cache(maxsize=1)
def agent_program() -> str:
    """The agent as base64 of zlib-compressed source, encoded once and built once per controller process."""
    return base64.b64encode(zlib.compress(agent_source().encode("utf-8"), 9)).decode("ascii")
