"""The result of one ``ansible-playbook`` run, and the type of the ``run_playbook`` fixture.

Tests import these only for annotations and assertions:
``from playbook_run import PlaybookRun, RunPlaybook``.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from pathlib import Path

OUTPUT_TAIL_LINES = 120
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


class RunPlaybook(t.Protocol):
    def __call__(
        self,
        playbook: str | Path,
        *,
        extra_vars: dict[str, t.Any] | None = None,
        env: dict[str, str] | None = None,
        check: bool = False,
        timeout: float = 300,
    ) -> PlaybookRun:
        ...
