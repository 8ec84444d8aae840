"""ansible-doc renders every plugin of the installed collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("plugin", ["longrun.jobs.run", "longrun.jobs.async_status", "longrun.jobs.job_wrapper"])
def test_ansible_doc_renders(plugin: str, collections_path: str) -> None:
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_path, "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run([str(ansible_doc), plugin], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert plugin.upper() in done.stdout.upper()
    assert "EXAMPLES" in done.stdout
    assert "RETURN VALUES" in done.stdout
    assert "WARNING" not in done.stderr.upper(), done.stderr
