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

import base64
import functools
import pathlib
import re
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


# Import statements found line by line: parsing and walking every module with ast cost each task ~90 ms,
# in every worker, since a worker's caches die with it. The unit tests check it against ast's view.
_TYPE_CHECKING_LINE = re.compile(r"[ \t]*if[ \t]+TYPE_CHECKING[ \t]*:[ \t]*(?:#.*)?\Z")
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)", re.M)
_PLAIN_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*)", re.M)


def _runtime_source(source: str) -> str:
    """The source without its ``if TYPE_CHECKING:`` blocks: imports for type checkers only, which never run."""
    kept: t.List[str] = []
    block_indent: t.Optional[int] = None
    for line in source.splitlines():
        text = line.lstrip()
        indent = len(line) - len(text)
        if block_indent is not None:
            if not text or indent > block_indent:
                continue
            block_indent = None
        if _TYPE_CHECKING_LINE.match(line):
            block_indent = indent
            continue
        kept.append(line)
    return "\n".join(kept)


def _imported_names(clause: str) -> t.List[str]:
    """The names of an import clause: ``a as b, c`` or ``(a,\n b)``, comments dropped."""
    names = []
    for line in clause.strip("()").splitlines():
        for part in line.split("#", 1)[0].split(","):
            words = part.split()
            if words:
                names.append(words[0])
    return names


def imported_modules(module: str, source: str) -> t.List[str]:
    """The collection modules that ``source`` (the text of ``module``) imports, wherever the import stands.

    Imports under ``if TYPE_CHECKING:`` are for type checkers only and never run.
    """
    found: t.List[str] = []
    is_package = (source_path(module) or pathlib.Path()).name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    runtime = _runtime_source(source)
    for match in _FROM_IMPORT.finditer(runtime):
        dots, base, clause = match.groups()
        if dots:
            # from . import x, from ..y import z: relative to the module's package.
            parts = package[: len(package) - len(dots) + 1]
            base = ".".join(parts + ([base] if base else []))
        names = [base] + [f"{base}.{name}" for name in _imported_names(clause)]
        found.extend(name for name in names if source_path(name) is not None)
    for match in _PLAIN_IMPORT.finditer(runtime):
        found.extend(name for name in _imported_names(match.group(1)) if source_path(name) is not None)
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
    # Level 6: level 9 makes it 0.5% smaller for twice the time (about 10 ms more per task).
    return base64.b64encode(zlib.compress(agent_source().encode("utf-8"), 6)).decode("ascii")
