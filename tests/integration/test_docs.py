"""ansible-doc renders every plugin of the installed collection."""

from __future__ import annotations

import os
import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "plugin",
    ["longrun.jobs.run", "longrun.jobs.async_status", "longrun.jobs.run_parallel", "longrun.jobs.job_wrapper"],
)
def test_ansible_doc_renders(plugin: str, collections_path: str) -> None:
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_path, "ANSIBLE_NOCOLOR": "1"}
    done = subprocess.run([str(ansible_doc), plugin], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert plugin.upper() in done.stdout.upper()
    assert "EXAMPLES" in done.stdout
    assert "RETURN VALUES" in done.stdout
    assert "WARNING" not in done.stderr.upper(), done.stderr


def _ansible_doc(collections_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": collections_path, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(ansible_doc), *args], capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("role, option", [("longrun.jobs.parallel", "parallel_limit"), ("longrun.jobs.cleanup", "cleanup_older_than")])
def test_ansible_doc_renders_roles(role: str, option: str, collections_path: str) -> None:
    done = _ansible_doc(collections_path, "-t", "role", role)
    assert done.returncode == 0, done.stderr
    assert option in done.stdout


def test_docs_only_module_options_match_the_action_spec(collections_path: str) -> None:
    """run_parallel is documented by a docs-only module: its options must be the action's spec."""
    from ansible_collections.longrun.jobs.plugins.module_utils._specs import run_parallel_argument_spec

    done = _ansible_doc(collections_path, "--json", "longrun.jobs.run_parallel")
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)["longrun.jobs.run_parallel"]["doc"]["options"]
    spec = run_parallel_argument_spec()
    assert set(options) == set(spec)
    for name, rules in spec.items():
        assert options[name]["type"] == rules["type"], name
        assert options[name].get("default") == rules.get("default"), name
        assert bool(options[name].get("required")) == bool(rules.get("required")), name
