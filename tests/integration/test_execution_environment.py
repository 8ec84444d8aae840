"""The collection in an execution environment: its metadata for ansible-builder and the example definition.

ansible-builder's ``create`` step turns the example definition into a build context without a
container engine, and its ``introspect`` step reads ``meta/execution-environment.yml`` of every
installed collection, as a build does. The transparent-mode line of the example must name the
collection's transparent dir where ansible-builder installs collections.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO_ROOT / "examples" / "execution-environment"
# Where ansible-builder installs the collections of an execution environment.
EE_COLLECTIONS_DIR = "/usr/share/ansible/collections"
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def ansible_builder() -> Path:
    path = Path(sys.executable).parent / "ansible-builder"
    if not path.exists():
        # make test's venv has it (tests/requirements.txt); the version matrix's venvs carry core alone.
        pytest.skip("ansible-builder is not in this venv; `make test` installs it")
    return path


@pytest.fixture
def installed_collection(collections_path: str) -> Path:
    path = Path(collections_path.split(os.pathsep)[0]) / "ansible_collections" / "longrun" / "jobs"
    if not (path / "galaxy.yml").exists() and not (path / "MANIFEST.json").exists():
        pytest.fail(f"{path} is not an installed collection; run `make collection` first", pytrace=False)
    return path


def run_builder(builder: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(builder), *args], cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
        stdin=subprocess.DEVNULL,
    )


def test_example_definition_becomes_a_build_context(ansible_builder: Path, tmp_path: Path) -> None:
    context = tmp_path / "context"
    done = run_builder(
        ansible_builder, "create", "-f", str(EXAMPLE_DIR / "execution-environment.yml"), "--context", str(context),
        "--output-filename", "Containerfile", cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    # The galaxy requirements that name the collection travel into the build.
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert [entry["name"] for entry in requirements["collections"]] == ["longrun.jobs"]
    # ...and are installed where the transparent line of the example looks for the collection.
    assert re.search(rf'ansible-galaxy collection install .*--collections-path "{EE_COLLECTIONS_DIR}"', containerfile)
    env_lines = [line for line in containerfile.splitlines() if line.startswith("ENV ANSIBLE_ACTION_PLUGINS=")]
    assert len(env_lines) == 1, containerfile


def build_env(definition: dict) -> dict[str, str]:
    """The ENV steps of the definition's final stage, with ${NAME} substituted as the container build does."""
    env: dict[str, str] = {}
    for step in definition["additional_build_steps"]["append_final"]:
        if step.startswith("ENV "):
            name, value = step[len("ENV "):].split("=", 1)
            env[name] = re.sub(r"\$\{(\w+)\}", lambda match: env[match[1]], value)
    return env


def test_transparent_line_of_the_example_names_the_installed_transparent_dir(installed_collection: Path) -> None:
    definition = yaml.safe_load((EXAMPLE_DIR / "execution-environment.yml").read_text(encoding="utf-8"))
    paths = build_env(definition)["ANSIBLE_ACTION_PLUGINS"].split(":")
    transparent = paths[0]
    prefix = f"{EE_COLLECTIONS_DIR}/ansible_collections/longrun/jobs/"
    assert transparent.startswith(prefix), transparent
    # The same dir, relative to the collection, exists in the collection as installed here.
    assert (installed_collection / transparent[len(prefix):] / "command.py").is_file()
    # Core's own default stays on the path after the transparent dir.
    assert paths[1:] == ["~/.ansible/plugins/action", "/usr/share/ansible/plugins/action"]


@pytest.fixture
def collection_copy(installed_collection: Path, tmp_path: Path) -> Path:
    """A copy of the installed collection in a collections root of its own, for introspection to read."""
    copy = tmp_path / "collections" / "ansible_collections" / "longrun" / "jobs"
    shutil.copytree(installed_collection, copy)
    return copy


def collections_root(collection: Path) -> Path:
    return collection.parents[2]


def test_introspection_reads_the_collection_metadata(
    ansible_builder: Path, collection_copy: Path, tmp_path: Path
) -> None:
    done = run_builder(ansible_builder, "introspect", str(collections_root(collection_copy)), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Expected requirements file not present" not in done.stdout
    data = yaml.safe_load(done.stdout[done.stdout.index("---"):])
    # longrun.jobs needs nothing beyond ansible-core: no Python package and no system package.
    assert data == {"python": [], "system": []}


def test_introspection_fails_when_the_metadata_names_a_missing_file(
    ansible_builder: Path, collection_copy: Path, tmp_path: Path
) -> None:
    # The check above can fail: metadata that names a file the collection lacks breaks the build.
    (collection_copy / "meta" / "ee-requirements.txt").unlink()
    done = run_builder(ansible_builder, "introspect", str(collections_root(collection_copy)), cwd=tmp_path)
    assert done.returncode != 0
    assert "Expected requirements file not present" in done.stdout


def test_metadata_files_are_in_the_built_collection(installed_collection: Path) -> None:
    meta = yaml.safe_load((installed_collection / "meta" / "execution-environment.yml").read_text(encoding="utf-8"))
    assert meta["version"] == 1
    for name in meta["dependencies"].values():
        assert (installed_collection / name).is_file(), name
