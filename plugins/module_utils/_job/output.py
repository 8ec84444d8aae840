# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A module's JSON result in its captured output, found and copied without loading it whole.

The supervisor must not hold a module's output in memory: a module may print
gigabytes. A scanner walks the output file in chunks, finds the first JSON
object that starts a line, and checks its syntax in full (structure, string
escapes, numbers), so that a record built from it always parses. It notes
where each top-level member is; only the few small values the supervisor needs
(failed, msg, rc, warnings) are decoded. The members are then copied into the
record chunk by chunk.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
import typing as t

CHUNK_BYTES = 65536
# Longest number or literal accepted; longer ones are not what modules print.
_MAX_SCALAR = 4096
# Top-level values up to this size can be decoded for the supervisor's own use.
SMALL_VALUE_BYTES = 1 << 20
_MAX_KEY_BYTES = 1024

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
# A run of string content: plain bytes (no quote, backslash or control byte) and valid escapes.
_STRING_BODY = re.compile(rb'(?:[^"\\\x00-\x1f]+|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*')
# What Python's json accepts besides strings and containers.
_SCALAR = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN|-?Infinity")
_LONE_SURROGATE = re.compile("[\udc80-\udcff]")

# What the grammar allows next.
_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _COMMA_OR_CLOSE = range(6)


class _Invalid(Exception):
    """The candidate is not a complete, valid JSON object."""


@dataclasses.dataclass
class Member:
    """Byte offsets of one top-level member: the key (with quotes) and the value."""

    key_start: int
    key_end: int
    value_start: int
    value_end: int


class _Scanner:
    """Checks one JSON value from a file offset, reading CHUNK_BYTES at a time."""

    def __init__(self, handle: t.BinaryIO, start: int) -> None:
        handle.seek(start)
        self.handle = handle
        self.buf = b""
        self.base = start
        self.pos = 0
        self.eof = False

    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self) -> bool:
        """Append the next chunk, dropping what was consumed; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0
        return True

    def _next_byte(self) -> int:
        """The next byte after whitespace, not consumed."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                raise _Invalid("the output ends inside the JSON object")

    def _string(self) -> None:
        self.pos += 1
        while True:
            self.pos = _STRING_BODY.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                byte = self.buf[self.pos]
                if byte == 0x22:
                    self.pos += 1
                    return
                # An escape cut by the chunk boundary: read on and look again.
                if byte == 0x5C and len(self.buf) - self.pos < 6 and self._fill():
                    continue
                raise _Invalid("a string holds a control character or a bad escape")
            if not self._fill():
                raise _Invalid("the output ends inside a string")

    def _scalar(self) -> None:
        # With the longest scalar in the buffer, a match cannot be cut short by the chunk boundary.
        while len(self.buf) - self.pos < _MAX_SCALAR and self._fill():
            pass
        match = _SCALAR.match(self.buf, self.pos)
        if match is None:
            raise _Invalid("unexpected bytes")
        self.pos = match.end()

    def object_members(self) -> t.Tuple[int, t.List[Member]]:
        """Check the object that starts here; returns its end offset and its top-level members."""
        members: t.List[Member] = []
        stack: t.List[int] = []
        state = _VALUE
        key_start = key_end = value_start = 0
        while True:
            byte = self._next_byte()
            start = self.offset()
            if state in (_KEY, _KEY_OR_CLOSE):
                if byte == 0x22:
                    self._string()
                    if len(stack) == 1:
                        key_start, key_end = start, self.offset()
                    state = _COLON
                    continue
                if byte != 0x7D or state == _KEY:
                    raise _Invalid("expected a key")
            elif state == _COLON:
                if byte != 0x3A:
                    raise _Invalid("expected ':'")
                self.pos += 1
                state = _VALUE
                continue
            elif state == _COMMA_OR_CLOSE:
                if byte == 0x2C:
                    self.pos += 1
                    state = _KEY if stack[-1] == 0x7B else _VALUE
                    continue
            elif byte != 0x5D or state == _VALUE:
                # A value starts here.
                if len(stack) == 1:
                    value_start = start
                if byte in (0x7B, 0x5B):
                    if not stack and byte != 0x7B:
                        raise _Invalid("not an object")
                    stack.append(byte)
                    self.pos += 1
                    state = _KEY_OR_CLOSE if byte == 0x7B else _VALUE_OR_CLOSE
                    continue
                if not stack:
                    raise _Invalid("not an object")
                if byte == 0x22:
                    self._string()
                else:
                    self._scalar()
                state = _COMMA_OR_CLOSE
                if len(stack) == 1:
                    members.append(Member(key_start, key_end, value_start, self.offset()))
                continue
            # A closing bracket, which must match the open container.
            if not stack or byte != stack[-1] + 2:
                raise _Invalid("unbalanced brackets")
            self.pos += 1
            stack.pop()
            if not stack:
                return self.offset(), members
            state = _COMMA_OR_CLOSE
            if len(stack) == 1:
                members.append(Member(key_start, key_end, value_start, self.offset()))


def _line_starts_with_brace(handle: t.BinaryIO) -> t.Iterator[int]:
    """Offsets of '{' at the start of a line, in order."""
    handle.seek(0)
    offset = 0
    previous = b"\n"
    while True:
        chunk = handle.read(CHUNK_BYTES)
        if not chunk:
            return
        data = previous + chunk
        found = data.find(b"\n{")
        while found != -1:
            yield offset + found
            found = data.find(b"\n{", found + 1)
        previous = chunk[-1:]
        offset += len(chunk)


def _read_span(handle: t.BinaryIO, start: int, end: int) -> bytes:
    handle.seek(start)
    return handle.read(end - start)


def _decode(raw: bytes) -> t.Any:
    return json.loads(raw.decode("utf-8", "surrogateescape"))


def _transcode(text: str) -> bytes:
    """UTF-8 for the record; bytes that were not UTF-8 become \\udcXX escapes, as json.dumps writes them."""
    if not text.isascii():
        text = _LONE_SURROGATE.sub(lambda match: "\\u%04x" % ord(match.group()), text)
    return text.encode("utf-8")


class ModuleResult:
    """The module's JSON object inside its output file, located but not loaded."""

    def __init__(self, path: str, start: int, end: int, members: t.List[Member]) -> None:
        self.path = path
        self.start = start
        self.end = end
        self.members = members
        self._keys: t.Optional[t.List[t.Optional[str]]] = None

    def keys(self) -> t.List[t.Optional[str]]:
        """The members' keys, None for keys too long to matter."""
        if self._keys is None:
            keys: t.List[t.Optional[str]] = []
            with open(self.path, "rb") as handle:
                for member in self.members:
                    if member.key_end - member.key_start > _MAX_KEY_BYTES:
                        keys.append(None)
                    else:
                        keys.append(_decode(_read_span(handle, member.key_start, member.key_end)))
            self._keys = keys
        return self._keys

    def small_values(self, wanted: t.Collection[str]) -> t.Dict[str, t.Any]:
        """The decoded values of the wanted keys that are at most SMALL_VALUE_BYTES (last one wins, as in json)."""
        values: t.Dict[str, t.Any] = {}
        with open(self.path, "rb") as handle:
            for key, member in zip(self.keys(), self.members):
                if key in wanted and member.value_end - member.value_start <= SMALL_VALUE_BYTES:
                    values[key] = _decode(_read_span(handle, member.value_start, member.value_end))
                elif key in values:
                    del values[key]
        return values

    def member_chunks(self, *, skip: t.Collection[str] = ()) -> t.Iterator[bytes]:
        """The members as JSON text ('"key": value, ...' without braces), CHUNK_BYTES at a time."""
        first = True
        with open(self.path, "rb") as handle:
            for key, member in zip(self.keys(), self.members):
                if key in skip:
                    continue
                if not first:
                    yield b", "
                first = False
                yield _transcode(_read_span(handle, member.key_start, member.key_end).decode("utf-8", "surrogateescape"))
                yield b": "
                decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
                handle.seek(member.value_start)
                remaining = member.value_end - member.value_start
                while remaining > 0:
                    chunk = handle.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        raise ValueError(f"{self.path} shrank while it was copied")
                    remaining -= len(chunk)
                    yield _transcode(decoder.decode(chunk, final=remaining <= 0))


class Trailer:
    """What follows the module's JSON object, judged as ansible-core judges a module's output.

    Core keeps the lines from the first one that starts with '{' to the last one that ends
    with '}' and loads them as one JSON document: more JSON after the result ("Extra data")
    fails the task; any other text after the last such line is dropped with a warning.
    """

    def __init__(self, *, problem: t.Optional[str] = None, junk: t.Optional[str] = None) -> None:
        # Why core could not load the output as one JSON result, in json's own words where it has them.
        self.problem = problem
        # The text after the result that core drops (with a warning), at most JUNK_BYTES of it.
        self.junk = junk


JUNK_BYTES = 4096
_BLANK = b" \t\r\x0b\x0c"


def judge_trailer(result: ModuleResult) -> Trailer:
    """Look at everything after the result, a chunk at a time."""
    first_extra: t.Optional[int] = None
    # The last line that ends with '}', by the offset of its end; the result's own closing line counts.
    last_brace_line_end: t.Optional[int] = None
    line_last_byte: t.Optional[int] = 0x7D
    closing_line_end: t.Optional[int] = None
    offset = result.end
    with open(result.path, "rb") as handle:
        handle.seek(offset)
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if not chunk:
                break
            for index, segment in enumerate(chunk.split(b"\n")):
                if index:
                    # A newline ended the previous line.
                    if line_last_byte == 0x7D:
                        last_brace_line_end = offset - 1
                    if closing_line_end is None:
                        closing_line_end = offset - 1
                    line_last_byte = None
                stripped = segment.rstrip(_BLANK)
                if stripped:
                    line_last_byte = stripped[-1]
                    if first_extra is None:
                        first_extra = offset + len(segment) - len(segment.lstrip(_BLANK))
                offset += len(segment) + 1
        if line_last_byte == 0x7D:
            last_brace_line_end = offset - 1
        if first_extra is None:
            return Trailer()
        if last_brace_line_end is not None and last_brace_line_end > first_extra:
            return Trailer(problem=_extra_data_message(handle, result.start, first_extra))
        if closing_line_end is not None and closing_line_end < first_extra and last_brace_line_end is not None:
            handle.seek(last_brace_line_end + 1)
            junk = handle.read(JUNK_BYTES).decode("utf-8", "replace").rstrip("\n")
            return Trailer(junk=junk)
    return Trailer(problem="text follows the JSON result on its last line, so the result has no end")


def _extra_data_message(handle: t.BinaryIO, start: int, extra: int) -> str:
    """json's message for data after the document, positions counted in characters from the result's start."""
    chars = newlines = since_newline = 0
    for text in decoded_span(handle, start, extra):
        chars += len(text)
        count = text.count("\n")
        if count:
            newlines += count
            since_newline = len(text) - text.rfind("\n") - 1
        else:
            since_newline += len(text)
    return f"Extra data: line {newlines + 1} column {since_newline + 1} (char {chars})"


def decoded_span(handle: t.BinaryIO, start: int, end: int) -> t.Iterator[str]:
    """The text of the file's bytes from start to end, CHUNK_BYTES at a time, without loading it whole.

    Bytes that are not UTF-8 come as surrogate escapes, as a module decodes its output; a character
    cut by a chunk boundary comes whole in the next piece.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    handle.seek(start)
    remaining = end - start
    while remaining > 0:
        data = handle.read(min(CHUNK_BYTES, remaining))
        if not data:
            break
        remaining -= len(data)
        text = decoder.decode(data, final=remaining <= 0)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def has_line_starting_with_brace(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return next(_line_starts_with_brace(handle), None) is not None
    except OSError:
        return False


def find_result(path: str) -> t.Optional[ModuleResult]:
    """The first JSON object that starts a line of the file, or None when there is none."""
    try:
        with open(path, "rb") as candidates, open(path, "rb") as scanned:
            for start in _line_starts_with_brace(candidates):
                try:
                    end, members = _Scanner(scanned, start).object_members()
                except _Invalid:
                    continue
                return ModuleResult(path, start, end, members)
    except OSError:
        return None
    return None
