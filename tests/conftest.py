# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests import the collection from this work tree, never from a build that may be stale.

Python can only import the collection as ``ansible_collections.longrun.jobs``, so a private
directory outside the repository holds ``ansible_collections/longrun/jobs``, a symbolic link to the
work tree, and goes first on ``sys.path`` and on the collection paths of Ansible's collection finder,
which is installed here, before any test module imports the collection. Playbooks in the integration tests still run the built
collection (``ANSIBLE_COLLECTIONS_PATH``), which ``make`` rebuilds before every test run.
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path

from ansible.plugins.loader import init_plugin_loader

REPO_ROOT = Path(__file__).resolve().parents[1]


def _link_work_tree() -> Path:
    """Create the import root: <tmp>/ansible_collections/longrun/jobs -> REPO_ROOT; removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="longrun-worktree-"))
    atexit.register(shutil.rmtree, root, True)
    namespace = root / "ansible_collections" / "longrun"
    namespace.mkdir(parents=True)
    (namespace / "jobs").symlink_to(REPO_ROOT, target_is_directory=True)
    return root


def _forget_imported_collections() -> None:
    """Drop anything of ``ansible_collections`` imported before the link existed (from another copy)."""
    for name in [name for name in sys.modules if name == "ansible_collections" or name.startswith("ansible_collections.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


WORK_TREE_IMPORT_ROOT = _link_work_tree()
# First on sys.path, ahead of anything a caller put there (PYTHONPATH, pytest -o pythonpath=...).
sys.path.insert(0, str(WORK_TREE_IMPORT_ROOT))
_forget_imported_collections()
# Ansible's collection finder, with the work tree ahead of ANSIBLE_COLLECTIONS_PATH: the plugin loaders
# then resolve longrun.jobs to the same files as a plain import does.
init_plugin_loader([str(WORK_TREE_IMPORT_ROOT)])
