# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Progress lines for people, kept off stdout when the stdout callback writes for machines (JSON and the like)."""

from __future__ import annotations

import functools
import typing as t

from ansible import constants as C
from ansible.plugins.loader import callback_loader
from ansible.utils.display import Display

display = Display()

# ansible-core's stdout callbacks for people; others count as theirs when they derive from one of these.
_PEOPLE_CALLBACKS = ("default", "minimal", "oneline")


def _written_for_people(plugin_class: type) -> bool:
    return any(
        klass.__module__.split(".")[-2:] in (["callback", name] for name in _PEOPLE_CALLBACKS)
        for klass in plugin_class.__mro__
    )


@functools.lru_cache(maxsize=None)
def stdout_is_for_people(name: t.Optional[str] = None) -> bool:
    """Whether the stdout callback (by default the configured one) is ansible-core's screen output or derives from it.

    Anything else, such as a JSON callback, owns stdout: text of ours there would break its output.
    """
    name = name or str(C.DEFAULT_STDOUT_CALLBACK)
    try:
        plugin_class = callback_loader.get(name, class_only=True)
    except Exception:  # pylint: disable=broad-except
        plugin_class = None
    return plugin_class is not None and _written_for_people(plugin_class)


def show_progress(line: str, *, verbosity: int = 0) -> None:
    """Show a progress line from ``verbosity`` on: on stdout with a callback for people, else on stderr.

    On stderr, JSON parsers of stdout do not look.
    """
    if display.verbosity < verbosity:
        return
    display.display(line, stderr=not stdout_is_for_people())
