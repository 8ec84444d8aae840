"""ansible-doc renders every plugin of the installed collection."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "plugin",
    ["longrun.jobs.run", "longrun.jobs.async_status", "longrun.jobs.run_parallel"],
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


@pytest.mark.parametrize(
    "role, option",
    [
        ("longrun.jobs.parallel", "parallel_limit"),
        ("longrun.jobs.cleanup", "cleanup_older_than"),
        ("longrun.jobs.transparent_mode", "transparent_mode_config_file"),
    ],
)
def test_ansible_doc_renders_roles(role: str, option: str, collections_path: str) -> None:
    done = _ansible_doc(collections_path, "-t", "role", role)
    assert done.returncode == 0, done.stderr
    assert option in done.stdout


@pytest.mark.parametrize(
    "plugin, spec_name",
    [
        ("longrun.jobs.run_parallel", "run_parallel_argument_spec"),
        ("longrun.jobs.async_status", "async_status_argument_spec"),
        ("longrun.jobs.run", "run_options_spec"),
    ],
)
def test_docs_only_module_options_match_the_action_spec(collections_path: str, plugin: str, spec_name: str) -> None:
    """Our modules are docs only: their options must be the action's spec."""
    from ansible_collections.longrun.jobs.plugins.plugin_utils import _specs

    done = _ansible_doc(collections_path, "--json", plugin)
    assert done.returncode == 0, done.stderr
    options = json.loads(done.stdout)[plugin]["doc"]["options"]
    spec = getattr(_specs, spec_name)()
    assert set(options) == set(spec)
    for name, rules in spec.items():
        assert options[name]["type"] == rules["type"], name
        assert options[name].get("default") == rules.get("default"), name
        assert bool(options[name].get("required")) == bool(rules.get("required")), name


REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO_ROOT / "plugins" / "modules"
DOC_VARIABLES = {"DOCUMENTATION", "EXAMPLES", "RETURN"}


def _is_docs_only_statement(node: ast.stmt) -> bool:
    """A docstring, ``from __future__ import ...``, or DOCUMENTATION/EXAMPLES/RETURN set to a string."""
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if isinstance(node, ast.ImportFrom):
        return node.module == "__future__"
    if isinstance(node, ast.Assign):
        [target] = node.targets
        return (
            isinstance(target, ast.Name)
            and target.id in DOC_VARIABLES
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        )
    return False


@pytest.mark.parametrize("path", sorted(MODULES_DIR.glob("*.py")), ids=lambda path: path.name)
def test_every_module_is_docs_only(path: Path) -> None:
    """The action plugins are the only way to run our plugins: a module holds nothing that could run on its own."""
    body = ast.parse(path.read_text()).body
    assert [node for node in body if not _is_docs_only_statement(node)] == [], f"{path.name} holds more than its docs"
    assigned = {target.id for node in body if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}
    assert assigned == DOC_VARIABLES, path.name


def test_every_module_has_an_action_plugin() -> None:
    actions = {path.name for path in (REPO_ROOT / "plugins" / "action").glob("*.py")}
    assert {path.name for path in MODULES_DIR.glob("*.py")} <= actions


RELIABILITY_DOC = REPO_ROOT / "docs" / "reliability.md"
# Every test in these files is a guarantee of docs/reliability.md and must be named there.
FAULT_TEST_FILES = (
    "test_faults.py",
    "test_connection_faults.py",
    "test_security.py",
    "test_fidelity.py",
    "test_hardening_run.py",
    "test_hardening_status.py",
    "test_hardening_target.py",
)
TEST_REFERENCE_RE = re.compile(r"`(tests/[\w/]+\.py)::([\w:]+)(?:\[[\w-]+\])?`")


def defined_tests(path: Path) -> set[str]:
    """Test names of a test file: test_x, and TestClass::test_x for methods."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test_"):
                    names.add(f"{node.name}::{item.name}")
    return names


def test_reliability_doc_names_only_real_tests_and_every_fault_test() -> None:
    references = TEST_REFERENCE_RE.findall(RELIABILITY_DOC.read_text())
    assert len(references) >= 20
    for file_name, test_name in references:
        path = REPO_ROOT / file_name
        assert path.is_file(), f"docs/reliability.md names {file_name}, which does not exist"
        assert test_name in defined_tests(path), f"docs/reliability.md names {file_name}::{test_name}, which does not exist"
    named = set(references)
    for file_name in FAULT_TEST_FILES:
        relative = f"tests/integration/{file_name}"
        for test_name in defined_tests(REPO_ROOT / relative):
            assert (relative, test_name) in named, f"docs/reliability.md does not name {relative}::{test_name}"


HOW_IT_WORKS_DOC = REPO_ROOT / "docs" / "how-it-works.md"
PYTHON_FILE_RE = re.compile(r"[\w./-]+\.py\b")
# The promise: a newcomer follows a run with poll > 0 from the action to the record and back in 8 files.
MAX_FILES_TO_FOLLOW_ONE_RUN = 8


def doc_section(text: str, title: str) -> str:
    """The text of the section ``## title``, up to the next section of that level."""
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def test_following_one_run_takes_at_most_eight_files_and_each_exists() -> None:
    named = set(PYTHON_FILE_RE.findall(doc_section(HOW_IT_WORKS_DOC.read_text(), "Follow one run")))

    assert 1 <= len(named) <= MAX_FILES_TO_FOLLOW_ONE_RUN, sorted(named)
    for name in sorted(named):
        assert (REPO_ROOT / name).is_file(), f"docs/how-it-works.md, Follow one run, names {name}, which does not exist"
