"""The result of one ``ansible-playbook`` run, and the type of the ``run_playbook`` fixture.

Tests import these only for annotations and assertions:
``from playbook_run import PlaybookRun, RunPlaybook, StartPlaybook``. They live here, not in
conftest.py: with the unit tests in the same run, ``import conftest`` finds another conftest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
import typing as t
from pathlib import Path

OUTPUT_TAIL_LINES = 120
# Seconds a stopped process group gets between SIGTERM and SIGKILL.
STOP_GRACE = 5.0
# The inventory name of the test target, in every transport's inventory.
TARGET_HOST = "target"


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    kept = text.splitlines()[-lines:]
    return "\n".join(kept)


@dataclasses.dataclass(frozen=True)
class Target:
    """What run_playbook needs of a target: an inventory and the environment of the run."""

    transport: str
    inventory: Path
    hostvars: dict[str, t.Any]
    env: dict[str, str]


@dataclasses.dataclass(frozen=True)
class PlaybookRun:
    command: list[str]
    rc: int
    stdout: str
    stderr: str
    duration: float
    out_dir: Path

    def load(self, name: str) -> t.Any:
        """Read a file that the playbook dumped into ``out_dir`` as JSON."""
        path = self.out_dir / name
        if not path.exists():
            dumped = sorted(p.name for p in self.out_dir.iterdir())
            raise AssertionError(f"playbook did not write {path} (out_dir holds {dumped})\n{self.report()}")
        return json.loads(path.read_text())

    def report(self) -> str:
        return (
            f"command: {' '.join(self.command)}\n"
            f"rc: {self.rc}, {self.duration:.1f}s\n"
            f"--- stdout (tail) ---\n{tail(self.stdout)}\n"
            f"--- stderr (tail) ---\n{tail(self.stderr)}"
        )

    def assert_ok(self) -> None:
        if self.rc != 0:
            raise AssertionError(f"ansible-playbook failed\n{self.report()}")


class PlaybookOptions(t.TypedDict, total=False):
    """The options of start_playbook, and of run_playbook besides its timeout."""

    extra_vars: dict[str, t.Any] | None
    env: dict[str, str] | None
    check: bool


class RunPlaybook(t.Protocol):
    def __call__(
        self, playbook: str | Path, *, timeout: float = 300, **options: t.Unpack[PlaybookOptions]
    ) -> PlaybookRun:
        ...


def communicate_or_kill(process: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes, bool]:
    """Collect output; past ``timeout`` stop the process group. Returns (stdout, stderr, timed_out)."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        return stdout, stderr, False
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            stdout, stderr = process.communicate(timeout=STOP_GRACE)
            return stdout, stderr, True
        except subprocess.TimeoutExpired:
            continue
    # Something outside the group still holds the pipes open; give up on the rest of the output.
    process.kill()
    process.wait()
    return b"", b"", True


@dataclasses.dataclass
class Background:
    """An ansible-playbook run started by start_playbook: it runs in a session (process group) of its own."""

    process: subprocess.Popen[bytes]
    command: list[str]
    out_dir: Path
    started: float

    def finish(self, timeout: float = 300) -> PlaybookRun:
        """Wait for its end (past timeout, stop its process group and fail) and collect its output."""
        stdout, stderr, timed_out = communicate_or_kill(self.process, timeout)
        run = PlaybookRun(
            command=self.command, rc=self.process.returncode, stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"), duration=time.monotonic() - self.started, out_dir=self.out_dir,
        )
        if timed_out:
            raise AssertionError(f"ansible-playbook timed out after {timeout:g}s\n{run.report()}")
        return run

    def kill_group(self, signum: int = signal.SIGKILL) -> None:
        """Signal ansible-playbook's process group, as a crash, Ctrl-C or a cancelled CI job does, and reap it."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass
        self.process.communicate()


class StartPlaybook(t.Protocol):
    def __call__(self, playbook: str | Path, **options: t.Unpack[PlaybookOptions]) -> Background:
        ...
