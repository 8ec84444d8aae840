# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.longrun.jobs`` importable when no built copy is on sys.path.

``make units`` installs the collection under .build/collections first; a bare
``pytest tests/unit`` in a fresh checkout has no such copy, so the checkout itself
is linked into a temporary collections tree for the whole session.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_importable() -> bool:
    try:
        importlib.import_module("ansible_collections.longrun.jobs")
    except ImportError:
        return False
    return True


def _link_checkout_as_collection() -> None:
    root = tempfile.mkdtemp(prefix="longrun-jobs-units-")
    # Registered before the link exists, so a failure below leaves nothing behind either.
    atexit.register(shutil.rmtree, root, True)
    namespace_dir = os.path.join(root, "ansible_collections", "longrun")
    os.makedirs(namespace_dir)
    os.symlink(REPO_ROOT, os.path.join(namespace_dir, "jobs"))
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    # A failed lookup may have cached the namespace packages without the new path entry.
    for name in [
        name for name in sys.modules if name == "ansible_collections" or name.startswith("ansible_collections.")
    ]:
        del sys.modules[name]


if not _collection_importable():
    _link_checkout_as_collection()
