# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a job's stdout and stderr in bounded pieces: from a byte offset, or its last lines.

The side files ``.<jid>.stdout`` and ``.<jid>.stderr`` in the async dir are the job's
streams while it runs (and, for command and shell jobs, after its end). A read never
holds more than its cap in memory, never cuts a UTF-8 character (the partial bytes
stay for the next read) and reports the offset to continue from.
"""

from __future__ import annotations

import errno
import os

from ansible_collections.longrun.jobs.plugins.module_utils._job import store as _store

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    import typing as t

    from ansible_collections.longrun.jobs.plugins.module_utils._job.record import JobRecord

STREAMS = ("stdout", "stderr")
# Bytes read per stream per job per request, unless the request asks for fewer (or more, up to the hard cap).
DEFAULT_MAX_BYTES = 65536
MAX_BYTES_LIMIT = 1048576
_NEWLINE = b"\n"


def hidden_note(jid: str) -> str:
    return f"the output of job {jid} is hidden by no_log"


class StreamRead:
    """One piece of one stream: its text and where the next read starts."""

    __slots__ = ("text", "offset", "next_offset", "size", "skipped", "truncated", "complete", "source")

    def __init__(
        self, *, text: str = "", offset: int = 0, next_offset: int = 0, size: int = 0, skipped: int = 0,
        truncated: bool = False, complete: bool = False, source: str = "file",
    ) -> None:
        self.text = text
        # Where the text starts, and where the next read should start.
        self.offset = offset
        self.next_offset = next_offset
        # The stream's length in bytes when it was read.
        self.size = size
        # Bytes between the requested offset and the text that were not returned (tail, keep_up).
        self.skipped = skipped
        # The cap stopped the read: more bytes follow next_offset already, read again from there.
        self.truncated = truncated
        # The job has ended and nothing follows next_offset: the stream is read to its end.
        self.complete = complete
        # file: the side file; result: the ended job's result key; none: neither exists.
        self.source = source

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


def read_job_output(
    async_dir: str,
    record: JobRecord,
    *,
    since: t.Optional[t.Mapping[str, int]] = None,
    tail: t.Optional[int] = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep_up: bool = False,
    fallback: bool = True,
) -> dict:
    """The job's output as a JobEntry carries it: {"stdout": {...}, "stderr": {...}}, or a no_log note.

    since: start offset per stream (0 when missing); tail: the last lines instead. keep_up
    (following): when more than max_bytes wait, skip to the latest ones, and return whole lines
    only while the job runs. fallback: for an ended job without side files, the result's keys.
    """
    if record.no_log:
        return {"hidden": True, "msg": hidden_note(record.jid)}
    max_bytes = max(1, min(int(max_bytes or DEFAULT_MAX_BYTES), MAX_BYTES_LIMIT))
    output = {}
    for stream in STREAMS:
        start = (since or {}).get(stream, 0)
        path = _store.side_path(async_dir, record.jid, "." + stream)
        try:
            read = read_file(
                path, since=start, tail=tail, max_bytes=max_bytes, ended=record.finished, keep_up=keep_up
            )
        except FileNotFoundError:
            read = _without_file(record, stream, start, tail=tail, max_bytes=max_bytes, fallback=fallback)
        output[stream] = read.to_dict()
    return output


def _without_file(
    record: JobRecord, stream: str, since: int, *, tail: t.Optional[int], max_bytes: int, fallback: bool
) -> StreamRead:
    value = record.result.get(stream) if fallback and record.finished and isinstance(record.result, dict) else None
    if not isinstance(value, str):
        # A running job whose file is not there yet has written nothing so far.
        return StreamRead(offset=since, next_offset=since, complete=record.finished, source="none")
    data = value.encode("utf-8", "surrogateescape")
    read = read_bytes(data, since=since, tail=tail, max_bytes=max_bytes, ended=True)
    read.source = "result"
    return read


def read_file(
    path: str, *, since: int = 0, tail: t.Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES,
    ended: bool = False, keep_up: bool = False,
) -> StreamRead:
    """Read a side file (never through a symlink); raises FileNotFoundError when it is not there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(exc.errno, exc.strerror, path) from None
        if exc.errno == errno.ELOOP:
            # A symlink planted in the async dir: read nothing, and say nothing that it points at.
            return StreamRead(offset=since, next_offset=since, complete=ended, source="none")
        raise
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size

        def read_at(start: int, count: int) -> bytes:
            handle.seek(start)
            return handle.read(count)

        return _read(read_at, size, since=since, tail=tail, max_bytes=max_bytes, ended=ended, keep_up=keep_up)


def read_bytes(
    data: bytes, *, since: int = 0, tail: t.Optional[int] = None, max_bytes: int = DEFAULT_MAX_BYTES,
    ended: bool = True, keep_up: bool = False,
) -> StreamRead:
    """The same read as read_file, of bytes in memory."""
    return _read(
        lambda start, count: data[start:start + count], len(data),
        since=since, tail=tail, max_bytes=max_bytes, ended=ended, keep_up=keep_up,
    )


def _read(
    read_at: t.Callable[[int, int], bytes], size: int, *, since: int, tail: t.Optional[int], max_bytes: int,
    ended: bool, keep_up: bool,
) -> StreamRead:
    # An offset past the end (of another source, such as the result instead of the file) finds nothing new.
    since = min(max(0, since), size)
    if tail is not None:
        start, window = _tail_start(read_at, size, tail, max_bytes)
        skipped = start
    elif keep_up and size - since > max_bytes:
        start, window = _latest_start(read_at, size, max_bytes)
        skipped = start - since
    else:
        start, window = since, read_at(since, min(max_bytes, size - since))
        skipped = 0
    end_of_data = start + len(window) >= size
    lead = _continuation_bytes(window)
    window = window[lead:]
    start += lead
    skipped += lead
    # A character cut by the cap or still being written waits for the next read; at the very end it is shown as is.
    if not (ended and end_of_data):
        window = window[:len(window) - _unfinished_tail(window)]
    if keep_up and not ended and end_of_data:
        # While following, the line being written waits for its end, unless it alone is as big as a read.
        newline = window.rfind(_NEWLINE)
        if newline >= 0:
            window = window[:newline + 1]
        elif len(window) < max_bytes:
            window = b""
    next_offset = start + len(window)
    return StreamRead(
        text=window.decode("utf-8", "replace"),
        offset=start,
        next_offset=next_offset,
        size=size,
        skipped=skipped,
        truncated=not end_of_data,
        complete=ended and next_offset >= size,
    )


def _tail_start(read_at: t.Callable[[int, int], bytes], size: int, lines: int, max_bytes: int) -> t.Tuple[int, bytes]:
    """Where the last lines start within the last max_bytes, and those bytes."""
    if lines <= 0:
        return size, b""
    first = max(0, size - max_bytes)
    window = read_at(first, size - first)
    # A final line without its newline still counts as a line.
    search_end = len(window) - 1 if window.endswith(_NEWLINE) else len(window)
    position = search_end
    for _line in range(lines):
        position = window.rfind(_NEWLINE, 0, position)
        if position < 0:
            # Fewer lines than asked for in the window: all of it (from the file's start, or cut by the cap).
            return first, window
    return first + position + 1, window[position + 1:]


def _latest_start(read_at: t.Callable[[int, int], bytes], size: int, max_bytes: int) -> t.Tuple[int, bytes]:
    """The latest max_bytes, from the first line that starts in them when there is one."""
    first = size - max_bytes
    window = read_at(first, max_bytes)
    newline = window.find(_NEWLINE)
    if 0 <= newline < len(window) - 1:
        return first + newline + 1, window[newline + 1:]
    return first, window


def _continuation_bytes(data: bytes) -> int:
    """How many bytes at the start continue a character that began before (at most 3)."""
    count = 0
    while count < min(3, len(data)) and 0x80 <= data[count] < 0xC0:
        count += 1
    return count


def _unfinished_tail(data: bytes) -> int:
    """How many bytes at the end begin a UTF-8 character whose other bytes are not there yet."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if needed > back else 0
    return 0
