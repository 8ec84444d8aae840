# Copyright: Contributors to the longrun.jobs collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip.py script that ansible-test caches in ~/.ansible/test/cache/.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com to bootstrap pip into the
empty virtual environments of ``ansible-test sanity --venv``. That host is unreachable here, so
``make sanity`` seeds the cache with this file instead: it installs the pip wheel bundled with
Python (ensurepip), then lets that pip install what ansible-test asked for from the configured index.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

# ensurepip sets these for its own pip run (PIP_CONFIG_FILE=/dev/null hides the index configuration).
ENSUREPIP_ENVIRONMENT = ('PIP_CONFIG_FILE', 'ENSUREPIP_OPTIONS')
# get-pip.py options that pip itself does not understand.
NO_SETUPTOOLS = '--no-setuptools'
NO_WHEEL = '--no-wheel'


def pip_environment() -> dict[str, str]:
    """Return the environment for pip, without anything ensurepip may have set."""
    return {name: value for name, value in os.environ.items() if name not in ENSUREPIP_ENVIRONMENT}


def bootstrap_pip() -> None:
    """Install the pip wheel bundled with this Python; needs no network."""
    # A child process, because ensurepip deletes every PIP_* variable from the environment it runs in.
    subprocess.run([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'], check=True, stdout=subprocess.DEVNULL)


def pip_install_arguments(get_pip_arguments: t.Sequence[str]) -> list[str]:
    """Translate get-pip.py arguments into the ``pip install`` arguments get-pip.py would use."""
    arguments = [argument for argument in get_pip_arguments if argument not in (NO_SETUPTOOLS, NO_WHEEL)]
    arguments.append('pip')

    if NO_SETUPTOOLS not in get_pip_arguments:
        arguments.append('setuptools')

    if NO_WHEEL not in get_pip_arguments:
        arguments.append('wheel')

    return ['install', '--upgrade', '--force-reinstall', *arguments]


def main() -> None:
    """Bootstrap pip, then install the requested packages with it."""
    bootstrap_pip()
    command = [sys.executable, '-m', 'pip', *pip_install_arguments(sys.argv[1:])]
    sys.exit(subprocess.run(command, env=pip_environment(), check=False).returncode)


if __name__ == '__main__':
    main()
