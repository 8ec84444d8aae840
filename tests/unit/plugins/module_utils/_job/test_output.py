# -*- coding: utf-8 -*-
# Copyright (c) longrun.jobs contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Finding and copying a module's JSON result without loading it, checked against Python's json."""

from __future__ import annotations

import json
import random

import pytest

from ansible_collections.longrun.jobs.plugins.module_utils._job import output as _module_output


def copied(tmp_path, output: bytes, *, skip=()) -> dict | None:
    """What the record built from this output parses to, or None when no result is found."""
    path = tmp_path / "stdout"
    path.write_bytes(output)
    result = _module_output.find_result(str(path))
    if result is None:
        return None
    return json.loads(b"{" + b"".join(result.member_chunks(skip=skip)) + b"}")


@pytest.fixture(params=[7, 65536], ids=["tiny-chunks", "default-chunks"])
def chunk_bytes(request, monkeypatch) -> int:
    # Tiny chunks put a chunk boundary inside every token at some point.
    monkeypatch.setattr(_module_output, "CHUNK_BYTES", request.param)
    return request.param


@pytest.mark.parametrize(
    "output, expected",
    [
        (b'{"changed": false, "x": 1}', {"changed": False, "x": 1}),
        (b'noise\nmore noise\n{"changed": false}\n', {"changed": False}),
        (b'loading {plugins}\n{"x": {"y": 1}}\n', {"x": {"y": 1}}),
        (b'{"x": 1}\ntrailing noise\n', {"x": 1}),
        (b'{"changed": false}\nwarning: {x} was ignored\n', {"changed": False}),
        (b"{}", {}),
        (b'{"a": [1, -2.5e3, true, null, NaN, -Infinity, {"b": []}], "c": "\\u00e9\\n\\"\\\\"}',
         {"a": [1, -2500.0, True, None, pytest.approx(float("nan"), nan_ok=True), float("-inf"), {"b": []}], "c": 'é\n"\\'}),
        (b'{"k\xc3\xa9": "\xc3\xa9"}', {"ké": "é"}),
        (b'{"a": 1}}', {"a": 1}),
        (b'{"a": [1,]}\n{"b": 2}', {"b": 2}),
    ],
)
def test_finds_the_result_as_json_would(tmp_path, chunk_bytes, output, expected):
    assert copied(tmp_path, output) == expected


@pytest.mark.parametrize(
    "output",
    [b"", b"garbage", b"{not json}", b"[1, 2]", b"} {", b"\xff\xfe", b'{"a": 1,}', b'{"a" 1}', b'{"a": [1 2]}',
     b'{"a": "x\ny"}', b'{"a": "\\x"}', b'{"a": 01}', b'{"a": tru}', b'{"a": 1', b'{"a": [}', b'{"a": {]}',
     b'{"a": "unterminated', b'{1: 2}', b' {"indented": 1}'],
)
def test_no_result_in_garbage(tmp_path, chunk_bytes, output):
    assert copied(tmp_path, output) is None


def test_bytes_that_are_not_utf8_become_escapes_as_json_dumps_writes_them(tmp_path, chunk_bytes):
    # What a module that decodes its output with surrogateescape and json.dumps it would have produced.
    assert copied(tmp_path, b'{"stdout": "ok \xff\xfe end"}') == {"stdout": "ok \udcff\udcfe end"}


def test_skipped_keys_are_left_out_and_small_values_decoded(tmp_path, chunk_bytes):
    path = tmp_path / "stdout"
    path.write_bytes(b'{"finished": 0, "msg": "m", "rc": 3, "failed": true, "stdout": "' + b"x" * 100000 + b'"}')
    result = _module_output.find_result(str(path))
    assert result.keys() == ["finished", "msg", "rc", "failed", "stdout"]
    assert result.small_values(("msg", "rc", "failed", "missing")) == {"msg": "m", "rc": 3, "failed": True}
    body = json.loads(b"{" + b"".join(result.member_chunks(skip={"finished", "msg"})) + b"}")
    assert body == {"rc": 3, "failed": True, "stdout": "x" * 100000}


def test_a_value_too_large_to_decode_is_left_out_of_small_values(tmp_path, monkeypatch):
    monkeypatch.setattr(_module_output, "SMALL_VALUE_BYTES", 10)
    path = tmp_path / "stdout"
    path.write_bytes(b'{"msg": "short", "msg": "much longer than ten bytes", "rc": 1}')
    result = _module_output.find_result(str(path))
    # The last msg wins in json, and it is too large: no msg rather than the wrong one.
    assert result.small_values(("msg", "rc")) == {"rc": 1}


def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randint(0, 7 if depth < 3 else 4)
    if kind == 0:
        return rng.randint(-10 ** 9, 10 ** 9)
    if kind == 1:
        return rng.random() * 1e5
    if kind == 2:
        return "".join(rng.choice('ab"\\\n\té\u2028\x01/') for _char in range(rng.randint(0, 30)))
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return "x" * rng.randint(0, 3000)
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _item in range(rng.randint(0, 4))]
    return {str(i) + rng.choice(["", "é", '"']): _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def _as_json_reads_it(output: bytes):
    """The reference: the first object at a line start that raw_decode accepts (the supervisor's old parser)."""
    text = output.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    for start in [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]:
        if text[start:start + 1] != "{":
            continue
        try:
            value = decoder.raw_decode(text, start)[0]
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def test_random_documents_and_their_corruptions_agree_with_json(tmp_path, monkeypatch):
    monkeypatch.setattr(_module_output, "CHUNK_BYTES", 7)
    rng = random.Random(4242)
    for _case in range(150):
        document = {str(i): _random_value(rng) for i in range(rng.randint(0, 4))}
        text = json.dumps(document, ensure_ascii=rng.choice([True, False])).encode("utf-8")
        assert copied(tmp_path, b"noise {\n" + text + b"\nmore") == document
        position = rng.randrange(len(text))
        corrupted = text[:position] + bytes([rng.choice(b'{}[]:,"\\x0 ')]) + text[position + 1:]
        assert copied(tmp_path, corrupted) == _as_json_reads_it(corrupted), corrupted


def _judged(tmp_path, output: bytes) -> _module_output.Trailer:
    path = tmp_path / "out"
    path.write_bytes(output)
    result = _module_output.find_result(str(path))
    assert result is not None
    return _module_output.judge_trailer(result)


@pytest.mark.parametrize("after", [b"", b"\n", b"\n\n  \n"])
def test_nothing_after_the_result_is_fine(tmp_path, after):
    trailer = _judged(tmp_path, b'noise\n{"changed": true}' + after)
    assert trailer.problem is None
    assert trailer.junk is None


def test_text_after_the_result_is_junk_as_in_core(tmp_path):
    trailer = _judged(tmp_path, b'{"changed": true}\n  trailing text\nmore\n')
    assert trailer.problem is None
    assert trailer.junk == "  trailing text\nmore"


@pytest.mark.parametrize(
    "output",
    [
        b'\n{"changed": true, "msg": "ok"}\n\n{"failed": true, "msg": "swallowed"}\n',
        b'{"a": "\xc3\xa9\xff"}\nx\n{"b": 1}',
        b'{"a": 1} {"b": 2}',
        b'{"a":\n 1}\n\n  text }\n',
    ],
    ids=["second-result", "non-ascii", "same-line", "text-ending-in-brace"],
)
def test_more_json_after_the_result_fails_with_json_s_own_message(tmp_path, output):
    # What core loads: the lines from the first '{' line to the last line ending with '}'.
    lines = output.decode("utf-8", "surrogateescape").splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    last = max(i for i, line in enumerate(lines) if line.strip().endswith("}"))
    with pytest.raises(ValueError) as core_error:
        json.loads("\n".join(lines[first:last + 1]))

    trailer = _judged(tmp_path, output)

    assert trailer.problem == str(core_error.value)


def test_text_after_the_result_on_its_last_line_fails(tmp_path):
    trailer = _judged(tmp_path, b'{"changed": true} and then some\n')
    assert trailer.problem is not None
    assert trailer.junk is None


def test_a_line_starting_with_a_brace_is_found(tmp_path):
    with_brace = tmp_path / "with"
    with_brace.write_bytes(b"text\n{not json\n")
    without = tmp_path / "without"
    without.write_bytes(b"text only\n")
    assert _module_output.has_line_starting_with_brace(str(with_brace))
    assert not _module_output.has_line_starting_with_brace(str(without))
    assert not _module_output.has_line_starting_with_brace(str(tmp_path / "missing"))
