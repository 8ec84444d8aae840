# Copyright: Contributors to the longrun.jobs collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ansible-test sanity and the integration suite on every supported ansible-core.

Each combo gets its own virtual environment under ``.build/matrix/<name>/venv``, created with a
pyenv Python (the real binary, never a shim) and the exact pins of ``tests/matrix/<name>.txt``.
A venv is reused while its stamp matches the interpreter and the pins. The collection is built
and installed with that venv's ansible-galaxy into ``.build/matrix/<name>/collections``, so the
combos never share build output with each other or with ``make test``.

``--smoke`` is the subset that ``make test`` runs: no sanity, a few key integration tests.
Logs go to ``.build/matrix/<name>/*.log``; a summary table ends the run, and the exit status is
non-zero if any step of any combo failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MATRIX_DIR = REPO_ROOT / 'tests' / 'matrix'
BUILD_DIR = REPO_ROOT / '.build' / 'matrix'
GET_PIP_OFFLINE = REPO_ROOT / 'tests' / 'tools' / 'get_pip_offline.py'
ANSIBLE_TEST_CACHE = Path.home() / '.ansible' / 'test' / 'cache'
COLLECTION_NAMESPACE = 'longrun'
COLLECTION_NAME = 'jobs'
# Python 3.8 on targets, for the ansible-core versions that still support it.
TARGET_PY38 = '3.8'

# Left out of the sanity copy, as in `make sanity`: local environments, build output, VCS metadata.
SANITY_COPY_EXCLUDED_TOP = frozenset({'.venv', '.build', '.git', '.ansible', '.pytest_cache'})
SANITY_COPY_EXCLUDED_PATHS = frozenset({'tests/output'})
SANITY_COPY_EXCLUDED_PATTERNS = ('__pycache__', '*.pyc', '*.tar.gz')


@dataclasses.dataclass(frozen=True)
class Combo:
    name: str
    core: str
    python: str
    # ansible-core 2.20 raised the target minimum to Python 3.9 (module_utils/basic.py _PY_MIN).
    supports_py38_target: bool


COMBOS = (
    Combo('core-2.18', core='2.18', python='3.11', supports_py38_target=True),
    Combo('core-2.19', core='2.19', python='3.11', supports_py38_target=True),
    Combo('core-2.20', core='2.20', python='3.12', supports_py38_target=False),
    Combo('core-2.21', core='2.21', python='3.13', supports_py38_target=False),
)
SMOKE_COMBOS = ('core-2.18', 'core-2.21')

# The smoke subset: launch and long-poll, timeout, stock/longrun compatibility (records and result
# keys) and one batch wait. Each runs over both transports (local and ssh).
SMOKE_TESTS = (
    'tests/integration/test_core.py::test_long_poll_returns_when_the_job_ends',
    'tests/integration/test_core.py::test_timeout_terminates_the_whole_tree',
    'tests/integration/test_core.py::test_stock_and_longrun_read_each_other',
    'tests/integration/test_fidelity.py::test_stock_and_longrun_give_the_same_result',
    'tests/integration/test_many_jobs.py::test_one_call_waits_for_twenty_jobs',
)
FULL_TESTS = ('tests/integration',)
# With the Python 3.8 target, the full suite less what never touches the target (ansible-doc, the
# harness self-tests): every test that runs a playbook is parametrized over the local and ssh targets.
PY38_TESTS = ('tests/integration', '-k', 'local or ssh')
STEPS = ('sanity', 'integration')

PYTEST_SUMMARY = re.compile(r'^=+ (.* in [0-9.]+s.*) =+$')


class MatrixError(Exception):
    """A problem with the set-up that stops a combo, with a message that says how to fix it."""


@dataclasses.dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str
    log: Path | None


@dataclasses.dataclass
class ComboReport:
    combo: Combo
    steps: list[Step] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


def pyenv_root() -> Path:
    """Return the pyenv root: PYENV_ROOT, else what ``pyenv root`` says, else ~/.pyenv."""
    if os.environ.get('PYENV_ROOT'):
        return Path(os.environ['PYENV_ROOT'])
    pyenv = shutil.which('pyenv')
    if pyenv:
        done = subprocess.run([pyenv, 'root'], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return Path(done.stdout.strip())
    return Path.home() / '.pyenv'


def pyenv_python(version: str) -> Path:
    """Return the real binary of the newest pyenv build of ``version`` (``X.Y``)."""
    versions_dir = pyenv_root() / 'versions'
    builds = []
    if versions_dir.is_dir():
        for build in versions_dir.iterdir():
            match = re.fullmatch(re.escape(version) + r'\.([0-9]+)', build.name)
            binary = build / 'bin' / f'python{version}'
            if match and binary.exists():
                builds.append((int(match.group(1)), binary))
    if not builds:
        raise MatrixError(f'no Python {version} under {versions_dir}; install one with `pyenv install {version}`')
    return max(builds)[1]


def run_logged(command: t.Sequence[str | Path], log: Path, *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> bool:
    """Run ``command`` with its output appended to ``log``; tell whether it succeeded."""
    with log.open('a') as stream:
        stream.write(f'$ {" ".join(str(part) for part in command)}\n')
        stream.flush()
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return done.returncode == 0


def log_tail(log: Path, lines: int = 30) -> str:
    return '\n'.join(log.read_text(errors='replace').splitlines()[-lines:])


class ComboRun:
    """The steps of one combo, each logged to its own file under ``.build/matrix/<name>/``."""

    def __init__(self, combo: Combo) -> None:
        self.combo = combo
        self.root = BUILD_DIR / combo.name
        self.venv = self.root / 'venv'
        self.python = self.venv / 'bin' / 'python'
        self.collections = self.root / 'collections'
        self.requirements = MATRIX_DIR / f'{combo.name}.txt'
        self.report = ComboReport(combo)

    def step(self, name: str, log_name: str, action: t.Callable[[Path], str]) -> bool:
        """Run one step and record it; ``action`` returns a one-line detail, or raises MatrixError when the step fails."""
        log = self.root / log_name
        log.write_text('')
        print(f'==> {self.combo.name}: {name} (log: {log.relative_to(REPO_ROOT)})', flush=True)
        started = time.monotonic()
        try:
            detail = action(log)
            ok = True
        except MatrixError as error:
            detail = str(error)
            ok = False
        except (OSError, ValueError) as error:
            # A broken environment (a file missing from the build, a full disk) fails this combo, not the run.
            detail = f'{type(error).__name__}: {error}'
            ok = False
        seconds = time.monotonic() - started
        self.report.steps.append(Step(name, ok, seconds, detail, log))
        verdict = 'ok' if ok else 'FAILED'
        print(f'    {verdict} in {seconds:.0f}s: {detail}', flush=True)
        if not ok:
            print(log_tail(log), file=sys.stderr, flush=True)
        return ok

    def ensure_venv(self, log: Path) -> str:
        if not self.requirements.is_file():
            raise MatrixError(f'{self.requirements} is missing; it pins ansible-core for {self.combo.name}')
        interpreter = pyenv_python(self.combo.python)
        stamp = self.venv / '.stamp'
        wanted = f'{interpreter}\n{hashlib.sha256(self.requirements.read_bytes()).hexdigest()}\n'
        if stamp.is_file() and stamp.read_text() == wanted and self.python.exists():
            return f'reused (Python {self.combo.python})'
        if self.venv.exists() and not (stamp.is_file() and stamp.read_text().split('\n', 1)[0] == str(interpreter)):
            # Made with another interpreter (or half made): pip cannot fix that, so start over.
            shutil.rmtree(self.venv)
        if not self.python.exists() and not run_logged([interpreter, '-m', 'venv', self.venv], log):
            raise MatrixError(f'{interpreter} -m venv failed')
        install = [self.python, '-m', 'pip', 'install', '--disable-pip-version-check', '-r', self.requirements]
        if not run_logged(install, log):
            raise MatrixError(f'pip install -r {self.requirements.relative_to(REPO_ROOT)} failed')
        stamp.write_text(wanted)
        return f'installed {self.requirements.relative_to(REPO_ROOT)} with {interpreter}'

    def build_collection(self, log: Path) -> str:
        dist = self.root / 'dist'
        shutil.rmtree(dist, ignore_errors=True)
        bin_dir = self.venv / 'bin'
        if not run_logged([bin_dir / 'ansible-galaxy', 'collection', 'build', '--force', '--output-path', dist], log):
            raise MatrixError('ansible-galaxy collection build failed')
        (artifact,) = dist.glob(f'{COLLECTION_NAMESPACE}-{COLLECTION_NAME}-*.tar.gz')
        install = [bin_dir / 'ansible-galaxy', 'collection', 'install', '--force', '--offline', '-p', self.collections, artifact]
        env = {**os.environ, 'ANSIBLE_COLLECTIONS_PATH': str(self.collections)}
        if not run_logged(install, log, env=env):
            raise MatrixError('ansible-galaxy collection install failed')
        return f'{artifact.name} installed'

    def sanity(self, log: Path) -> str:
        # ansible-test only runs from inside ansible_collections/<namespace>/<name>.
        sanity_root = self.root / 'sanity' / 'ansible_collections' / COLLECTION_NAMESPACE / COLLECTION_NAME
        shutil.rmtree(self.root / 'sanity', ignore_errors=True)
        shutil.copytree(REPO_ROOT, sanity_root, ignore=sanity_copy_ignore, symlinks=True)
        # ansible-test lists files with git; the checkout's .git ignores .build/, so the copy gets its own.
        if not run_logged(['git', '-C', sanity_root, 'init', '--quiet'], log):
            raise MatrixError('git init of the sanity copy failed')
        seed_get_pip_cache(self.python, self.combo.python)
        command = [self.venv / 'bin' / 'ansible-test', 'sanity', '--venv', '--python', self.combo.python, '--color', 'no']
        if not run_logged(command, log, cwd=sanity_root):
            lines = log.read_text(errors='replace').splitlines()
            # ERROR lines name the file and the problem; FATAL lines only name the failed tests.
            errors = [line for line in lines if line.startswith('ERROR:') and not line.startswith('ERROR: Found ')]
            raise MatrixError('; '.join(errors[:3]) or 'ansible-test sanity failed')
        return 'passed'

    def integration(self, log: Path, *, target_python: Path, tests: t.Sequence[str]) -> str:
        env = {
            **os.environ,
            'ANSIBLE_COLLECTIONS_PATH': str(self.collections),
            'LONGRUN_TARGET_PYTHON': str(target_python),
        }
        # The tests import the work tree (tests/conftest.py); the playbooks run this combo's build.
        command = [self.python, '-m', 'pytest', '-p', 'no:cacheprovider', *tests]
        ok = run_logged(command, log, env=env)
        summary = pytest_summary(log)
        if not ok:
            raise MatrixError(summary or 'pytest failed')
        return summary

    def run(self, *, smoke: bool, steps: t.Collection[str], py38: Path | None) -> ComboReport:
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.step('venv', 'venv.log', self.ensure_venv):
            return self.report
        if not self.step('collection', 'collection.log', self.build_collection):
            return self.report
        if 'sanity' in steps and not smoke:
            self.step('sanity', 'sanity.log', self.sanity)
        if 'integration' not in steps:
            return self.report
        tests = SMOKE_TESTS if smoke else FULL_TESTS
        controller = pyenv_python(self.combo.python)
        if not (smoke and self.combo.supports_py38_target):
            self.step(
                f'integration, target Python {self.combo.python}',
                f'integration-py{self.combo.python}.log',
                lambda log: self.integration(log, target_python=controller, tests=tests),
            )
        if self.combo.supports_py38_target and py38 is not None:
            self.step(
                f'integration, target Python {TARGET_PY38}',
                f'integration-py{TARGET_PY38}.log',
                lambda log: self.integration(log, target_python=py38, tests=tests if smoke else PY38_TESTS),
            )
        return self.report


def sanity_copy_ignore(directory: str, names: list[str]) -> set[str]:
    relative = Path(directory).relative_to(REPO_ROOT).as_posix()
    ignored = set()
    for name in names:
        path = name if relative == '.' else f'{relative}/{name}'
        if (relative == '.' and name in SANITY_COPY_EXCLUDED_TOP) or path in SANITY_COPY_EXCLUDED_PATHS:
            ignored.add(name)
    ignored.update(shutil.ignore_patterns(*SANITY_COPY_EXCLUDED_PATTERNS)(directory, names))
    return ignored


def seed_get_pip_cache(python: Path, python_version: str) -> None:
    """Put the offline get-pip.py where this ansible-test looks for the pip version it wants.

    ``ansible-test sanity --venv`` bootstraps pip in each new virtualenv with a get-pip.py from
    ci-files.testing.ansible.com, cached under a name that carries the pip version; see `make sanity`.
    """
    query = (
        'import sys, types\n'
        'from ansible_test._internal.python_requirements import get_venv_packages\n'
        'print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])\n'
    )
    done = subprocess.run([str(python), '-c', query, python_version], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MatrixError(f'cannot ask ansible-test which pip it wants: {done.stderr.strip().splitlines()[-1:]}')
    pip_version = done.stdout.strip()
    ANSIBLE_TEST_CACHE.mkdir(parents=True, exist_ok=True)
    cached = ANSIBLE_TEST_CACHE / f'get_pip_{pip_version.replace(".", "_")}.py'
    shutil.copyfile(GET_PIP_OFFLINE, cached)
    cached.chmod(0o644)


def pytest_summary(log: Path) -> str:
    for line in reversed(log.read_text(errors='replace').splitlines()):
        match = PYTEST_SUMMARY.match(line.strip())
        if match:
            return match.group(1)
    return ''


def print_summary(reports: t.Sequence[ComboReport], *, smoke: bool, wall: float) -> None:
    title = 'test-matrix smoke' if smoke else 'test-matrix'
    rows = [('combo', 'step', 'result', 'time', 'detail')]
    for report in reports:
        for step in report.steps:
            rows.append(
                (report.combo.name, step.name, 'ok' if step.ok else 'FAILED', f'{step.seconds:.0f}s', step.detail)
            )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    print(f'\n{title} summary (wall time {wall:.0f}s)')
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + '  ' + row[4])
    for report in reports:
        verdict = 'passed' if report.ok else 'FAILED'
        print(f'{report.combo.name} (ansible-core {report.combo.core}, Python {report.combo.python}): {verdict}')


def select_combos(names: str | None, *, smoke: bool) -> list[Combo]:
    by_name = {combo.name: combo for combo in COMBOS}
    if not names:
        return [by_name[name] for name in SMOKE_COMBOS] if smoke else list(COMBOS)
    selected = []
    for name in re.split(r'[\s,]+', names.strip()):
        if name not in by_name:
            raise MatrixError(f'unknown combo {name!r} in MATRIX; choose from {", ".join(by_name)}')
        selected.append(by_name[name])
    return selected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--smoke', action='store_true', help='no sanity, only the key integration tests')
    parser.add_argument(
        '--combos',
        default=os.environ.get('MATRIX'),
        help=f'comma-separated combos (default: all, or {",".join(SMOKE_COMBOS)} with --smoke); env MATRIX',
    )
    parser.add_argument(
        '--steps',
        default=','.join(STEPS),
        help=f'comma-separated steps to run after the venv and the collection (default: {",".join(STEPS)})',
    )
    options = parser.parse_args()
    steps = set(re.split(r'[\s,]+', options.steps.strip()))
    if not steps <= set(STEPS):
        print(f'test-matrix: unknown step in --steps {options.steps!r}; choose from {", ".join(STEPS)}', file=sys.stderr)
        return 2
    try:
        combos = select_combos(options.combos, smoke=options.smoke)
        py38 = pyenv_python(TARGET_PY38) if any(combo.supports_py38_target for combo in combos) else None
    except MatrixError as error:
        print(f'test-matrix: {error}', file=sys.stderr)
        return 2
    started = time.monotonic()
    reports = [ComboRun(combo).run(smoke=options.smoke, steps=steps, py38=py38) for combo in combos]
    print_summary(reports, smoke=options.smoke, wall=time.monotonic() - started)
    return 0 if all(report.ok for report in reports) else 1


if __name__ == '__main__':
    sys.exit(main())
