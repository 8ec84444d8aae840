"""Fixtures for real ``ansible-playbook`` runs against a ``local`` and an ``ssh`` target.

Every test that uses ``run_playbook`` (or ``target``) runs once per transport. The
ssh transport talks to a private sshd on 127.0.0.1 that the session starts and
stops; the system sshd is never touched. Each test gets its own ``out_dir`` (for
results the playbook dumps) and ``async_dir`` (``ANSIBLE_ASYNC_DIR``).

To run a test over one transport only::

    @pytest.mark.parametrize("target", ["ssh"], indirect=True)
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pwd
import random
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
import yaml

INTEGRATION_DIR = Path(__file__).resolve().parent
# --import-mode=importlib leaves sys.path alone; test modules still need `from helpers import ...`.
if str(INTEGRATION_DIR) not in sys.path:
    sys.path.insert(0, str(INTEGRATION_DIR))

from helpers import descendant_pids, pids_with_cmdline, terminate_pids  # noqa: E402
from sshd_server import (  # noqa: E402
    free_port,
    generate_key,
    stop_process,
    wait_for_ssh_banner,
    write_sshd_config,
)
from playbook_run import (  # noqa: E402
    STOP_GRACE,
    TARGET_HOST,
    Background,
    PlaybookOptions,
    PlaybookRun,
    RunPlaybook,
    StartPlaybook,
    Target,
    tail,
)

REPO_ROOT = INTEGRATION_DIR.parents[1]
PLAYBOOK_DIR = INTEGRATION_DIR / "playbooks"
SSHD_BINARY = Path("/usr/sbin/sshd")
SSHD_START_TIMEOUT = 15.0
SSHD_PORT_ATTEMPTS = 3
RESERVED_EXTRA_VARS = ("out_dir", "async_dir")


def pytest_configure(config: pytest.Config) -> None:
    # pytest.ini registers these too; registering twice is harmless and keeps --strict-markers happy without it.
    config.addinivalue_line("markers", "integration: runs real ansible-playbook processes")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    create_test_users(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_test_users(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item, including tests/unit when both trees are collected.
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


@dataclasses.dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    key_path: Path
    pid: int
    control_path_dir: Path
    log_path: Path


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def close_ssh_masters(control_path_dir: Path) -> None:
    """Stop the ControlPersist masters that ansible's ssh connection left behind."""
    if control_path_dir.is_dir():
        for control_socket in control_path_dir.iterdir():
            subprocess.run(
                ["ssh", "-O", "exit", "-o", f"ControlPath={control_socket}", "longrun-integration"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
    # A master whose socket vanished ignores `-O exit`; its title still names our private dir.
    terminate_pids(pids_with_cmdline(str(control_path_dir)), grace=STOP_GRACE)


@pytest.fixture(scope="session")
def target_python() -> str:
    """Interpreter the target runs modules with.

    The base interpreter behind the venv, resolved to a real path so that a
    pyenv shim on PATH never gets involved; LONGRUN_TARGET_PYTHON overrides it.
    """
    override = os.environ.get("LONGRUN_TARGET_PYTHON")
    if override:
        return override
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


@pytest.fixture(scope="session")
def ansible_playbook_bin() -> Path:
    # sys.executable is deliberately not resolved: resolving would leave the venv's bin dir.
    path = Path(sys.executable).parent / "ansible-playbook"
    if not path.exists():
        pytest.fail(f"{path} not found; run the tests with the venv's pytest (`make test`)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def collections_path() -> str:
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(REPO_ROOT / ".build" / "collections")


@pytest.fixture(scope="session")
def transparent_dir(collections_path: str) -> Path:
    """The collection's transparent/action_plugins: on the action plugin path, it switches transparent mode on."""
    collection = Path(collections_path.split(os.pathsep)[0]) / "ansible_collections" / "longrun" / "jobs"
    path = collection / "transparent" / "action_plugins"
    if not (path / "command.py").is_file():
        pytest.fail(f"{path} has no command.py; run `make collection` first", pytrace=False)
    return path


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[SshServer]:
    if not SSHD_BINARY.exists():
        pytest.fail(
            f"{SSHD_BINARY} is missing, so the ssh transport cannot be tested; "
            "run `make test`, which installs openssh-server",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("sshd")
    generate_key(workdir / "host_ed25519")
    generate_key(workdir / "client_ed25519")
    shutil.copyfile(workdir / "client_ed25519.pub", workdir / "authorized_keys")
    control_path_dir = workdir / "cp"
    control_path_dir.mkdir(mode=0o700)
    log_path = workdir / "sshd.log"
    if os.geteuid() == 0:
        # sshd running as root insists on its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    process: subprocess.Popen[bytes] | None = None
    port = 0
    failure = ""
    # free_port() cannot reserve the port, so another process may grab it first; retry on a new one.
    for _attempt in range(SSHD_PORT_ATTEMPTS):
        port = free_port()
        config = write_sshd_config(workdir, port)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(SSHD_BINARY), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        error = wait_for_ssh_banner(process, port, SSHD_START_TIMEOUT)
        if error is None:
            break
        stop_process(process)
        process = None
        log_text = log_path.read_text(errors="replace")
        failure = f"{error}\n--- sshd stderr ---\n{tail(log_text)}"
        if "Address already in use" not in log_text:
            break
    if process is None:
        pytest.fail(f"could not start {SSHD_BINARY}: {failure}", pytrace=False)

    try:
        yield SshServer(
            host="127.0.0.1",
            port=port,
            user=current_user(),
            key_path=workdir / "client_ed25519",
            pid=process.pid,
            control_path_dir=control_path_dir,
            log_path=log_path,
        )
    finally:
        # Masters first: closing their connections lets the per-connection sshd children exit.
        close_ssh_masters(control_path_dir)
        children = descendant_pids(process.pid)
        stop_process(process)
        terminate_pids(children, grace=STOP_GRACE)


@pytest.fixture(scope="session", params=["local", "ssh"], ids=["local", "ssh"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, target_python: str) -> Target:
    transport: str = request.param
    hostvars: dict[str, t.Any] = {"ansible_python_interpreter": target_python}
    env: dict[str, str] = {}
    if transport == "local":
        hostvars["ansible_connection"] = "local"
    elif transport == "ssh":
        # Looked up lazily so that `-k local` runs never need sshd.
        server: SshServer = request.getfixturevalue("sshd")
        hostvars.update(
            ansible_connection="ssh",
            ansible_host=server.host,
            ansible_port=server.port,
            ansible_user=server.user,
            ansible_ssh_private_key_file=str(server.key_path),
            ansible_ssh_common_args=(
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"
            ),
        )
        # A private dir lets the sshd teardown find and stop every ControlPersist master.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(server.control_path_dir)
    else:
        raise ValueError(f"unknown transport {transport!r}")
    inventory = tmp_path_factory.mktemp(f"inventory-{transport}") / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {TARGET_HOST: hostvars}}}, sort_keys=False))
    return Target(transport=transport, inventory=inventory, hostvars=hostvars, env=env)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def marker() -> t.Iterator[int]:
    """A sleep duration no other process uses, to find the job's processes; cleaned up afterwards."""
    seconds = random.randint(3000, 8999)
    yield seconds
    terminate_pids(pids_with_cmdline(f"sleep {seconds}"), grace=2)


@pytest.fixture
def async_dir(tmp_path: Path) -> Path:
    path = tmp_path / "async"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def start_playbook(
    target: Target,
    out_dir: Path,
    async_dir: Path,
    tmp_path: Path,
    ansible_playbook_bin: Path,
    collections_path: str,
) -> t.Iterator[StartPlaybook]:
    """Start ansible-playbook against the target and return at once; what is left running is killed at the end."""
    call_numbers = itertools.count(1)
    started: list[Background] = []

    def start(
        playbook: str | Path,
        *,
        extra_vars: dict[str, t.Any] | None = None,
        env: dict[str, str] | None = None,
        check: bool = False,
    ) -> Background:
        playbook_path = PLAYBOOK_DIR / playbook
        if not playbook_path.exists():
            raise FileNotFoundError(playbook_path)
        clashes = sorted(set(extra_vars or {}) & set(RESERVED_EXTRA_VARS))
        if clashes:
            raise ValueError(f"run_playbook sets {clashes} itself; use the out_dir/async_dir fixtures")
        call = next(call_numbers)
        vars_file = tmp_path / f"extra-vars-{call}.json"
        vars_file.write_text(
            json.dumps({**(extra_vars or {}), "out_dir": str(out_dir), "async_dir": str(async_dir)})
        )
        command = [str(ansible_playbook_bin), "-i", str(target.inventory), str(playbook_path), "-e", f"@{vars_file}"]
        if check:
            command.append("--check")
        run_env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": collections_path,
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_ASYNC_DIR": str(async_dir),
            **target.env,
            **(env or {}),
        }
        # Own session so a timeout can stop ansible-playbook and its workers as one group.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=run_env,
            # A scratch cwd keeps a stray ansible.cfg in the checkout from changing the run.
            cwd=tmp_path,
            start_new_session=True,
        )
        background = Background(process=process, command=command, out_dir=out_dir, started=time.monotonic())
        started.append(background)
        return background

    yield start
    for background in started:
        if background.process.poll() is None:
            background.kill_group()


@pytest.fixture
def run_playbook(start_playbook: StartPlaybook) -> RunPlaybook:
    def run(playbook: str | Path, *, timeout: float = 300, **options: t.Unpack[PlaybookOptions]) -> PlaybookRun:
        return start_playbook(playbook, **options).finish(timeout)

    return run


BECOME_TEST_USER = "longrun-test"
OTHER_TEST_USER = "longrun-other"
TEST_USERS = (BECOME_TEST_USER, OTHER_TEST_USER)
# Users this pytest process created, removed when it ends.
_CREATED_USERS: list[str] = []


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def create_test_users(config: pytest.Config) -> None:
    """Create the unprivileged test users once, in the process that runs (or hands out) the tests.

    Under pytest-xdist the workers share them: a worker that created and removed a user of its own
    would remove it under the other workers' feet.
    """
    if _is_xdist_worker(config) or os.geteuid() != 0:
        return
    for name in TEST_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
            _CREATED_USERS.append(name)


def remove_test_users(config: pytest.Config) -> None:
    if _is_xdist_worker(config):
        return
    while _CREATED_USERS:
        name = _CREATED_USERS.pop()
        for pid in pids_owned_by(name):
            terminate_pids([pid], grace=1)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def unprivileged_user(name: str) -> str:
    """A test user: created by the session when running as root (see create_test_users)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            pytest.skip(f"become tests need root to create the user {name}, or the user to exist")
        pytest.fail(f"the test user {name} is missing: the session creates it at start; was it removed meanwhile?")
    return name


@pytest.fixture(scope="session")
def become_user() -> str:
    """The unprivileged user that become tests run jobs as."""
    return unprivileged_user(BECOME_TEST_USER)


@pytest.fixture(scope="session")
def other_user() -> str:
    """A second unprivileged user, who must not see the become user's jobs."""
    return unprivileged_user(OTHER_TEST_USER)


def pids_owned_by(user: str) -> list[int]:
    uid = pwd.getpwnam(user).pw_uid
    owned = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    owned.append(int(entry))
            except OSError:
                continue
    return owned
