"""Canonical JSON: round trips over the allowed value space, and every refusal of loads_strict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consortium_protocol.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical,
    canonical_checked,
    check_value,
    loads_strict,
)
from consortium_protocol.errors import ProtocolError

safe_ints = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
# st.text() already leaves out lone surrogates, which UTF-8 cannot carry; the
# explicit alphabet makes sure control characters and astral code points show up.
strings = st.text(st.characters(codec="utf-8")) | st.text(st.characters(max_codepoint=0x1F)) | st.text()
ascii_keys = st.text(st.characters(max_codepoint=0x7F), max_size=12)
scalars = st.none() | st.booleans() | safe_ints | strings
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(ascii_keys, children, max_size=5),
    max_leaves=30,
)


def _reverse_insertion(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reverse_insertion(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_insertion(item) for item in value]
    return value


def _code(data: bytes | str) -> str:
    with pytest.raises(ProtocolError) as caught:
        loads_strict(data)
    return caught.value.code


@given(values)
def test_canonical_encoding_round_trips_through_loads_strict(value: Any) -> None:
    assert loads_strict(canonical(value)) == value


@given(values)
def test_canonical_encoding_equals_sorted_compact_json_dumps(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_checked(value) == expected.encode("utf-8")


@given(values)
def test_canonical_encoding_ignores_key_insertion_order(value: Any) -> None:
    assert canonical(_reverse_insertion(value)) == canonical(value)


@given(values)
def test_canonical_encoding_is_a_fixed_point(value: Any) -> None:
    encoded = canonical(value)
    assert canonical(loads_strict(encoded)) == encoded


@given(st.dictionaries(ascii_keys, safe_ints, min_size=2, max_size=8))
def test_object_keys_come_out_sorted_by_code_point(obj: dict[str, int]) -> None:
    parsed = json.loads(canonical(obj), object_pairs_hook=lambda pairs: [key for key, _ in pairs])
    assert parsed == sorted(obj)


def test_non_ascii_is_written_as_itself_and_slash_is_not_escaped() -> None:
    assert canonical({"a": "é/😀"}) == '{"a":"é/😀"}'.encode()


def test_control_characters_use_short_or_lowercase_unicode_escapes() -> None:
    assert canonical('\n\t\x1f"\\') == b'"\\n\\t\\u001f\\"\\\\"'


def test_largest_safe_integers_are_accepted() -> None:
    assert loads_strict(str(MAX_SAFE_INTEGER)) == MAX_SAFE_INTEGER
    assert loads_strict(str(-MAX_SAFE_INTEGER)) == -MAX_SAFE_INTEGER


@pytest.mark.parametrize("text", ["1.5", "1e3", "1E3", "-0.0", "0.0", "1E400", '{"a":[1,2.0]}'])
def test_loads_strict_rejects_floats(text: str) -> None:
    assert _code(text) == "float_not_allowed"


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[NaN]"])
def test_loads_strict_rejects_nan_and_infinity(text: str) -> None:
    assert _code(text) == "invalid_json"


@pytest.mark.parametrize("text", ['{"a":1,"a":1}', '{"a":1,"b":{"c":1,"c":2}}', '[{"x":1,"x":2}]'])
def test_loads_strict_rejects_duplicate_keys(text: str) -> None:
    assert _code(text) == "duplicate_key"


@pytest.mark.parametrize("text", ['{"é":1}', '{"\\u00e9":1}', '{"a":{"ключ":1}}'])
def test_loads_strict_rejects_non_ascii_keys(text: str) -> None:
    assert _code(text) == "non_ascii_key"


@pytest.mark.parametrize("number", [2**53, -(2**53), 10**20, -(10**30)])
def test_loads_strict_rejects_integers_outside_the_safe_range(number: int) -> None:
    assert _code(str(number)) == "integer_out_of_range"


def test_loads_strict_rejects_an_integer_literal_too_long_for_int() -> None:
    assert _code("9" * 5000) == "integer_out_of_range"


@pytest.mark.parametrize("data", [b"\xff", b'"\xc3"', b'"\xed\xa0\x80"', b'{"a":"\x80"}'])
def test_loads_strict_rejects_invalid_utf8(data: bytes) -> None:
    assert _code(data) == "invalid_json"


@pytest.mark.parametrize("text", ['"\\ud800"', '["\\udfff"]', '{"a":"x\\ud83d"}'])
def test_loads_strict_rejects_lone_surrogate_escapes(text: str) -> None:
    assert _code(text) == "bad_value"


def test_escaped_surrogate_pair_is_an_ordinary_character() -> None:
    assert loads_strict('"\\ud83d\\ude00"') == "😀"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 2, 5000, 200_000])
def test_loads_strict_rejects_deep_nesting(depth: int) -> None:
    assert _code("[" * depth + "]" * depth) == "too_deep"


def test_nesting_up_to_the_limit_is_accepted() -> None:
    text = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert canonical(loads_strict(text)).decode() == text


@pytest.mark.parametrize("text", ["", "{", "[1,]", '{"a" 1}', "01", "1 2", "'a'", "tru"])
def test_loads_strict_rejects_malformed_json(text: str) -> None:
    assert _code(text) == "invalid_json"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.0, "float_not_allowed"),
        ({"a": [0.5]}, "float_not_allowed"),
        (2**53, "integer_out_of_range"),
        ({1: "a"}, "non_ascii_key"),
        ({"ü": 1}, "non_ascii_key"),
        ((1, 2), "bad_value"),
        (b"bytes", "bad_value"),
        ("\udc80", "bad_value"),
    ],
)
def test_check_value_refuses_python_values_outside_the_space(value: Any, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_value(value)
    assert caught.value.code == code


def test_check_value_refuses_deep_python_values() -> None:
    value: Any = []
    for _ in range(MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(ProtocolError) as caught:
        canonical_checked(value)
    assert caught.value.code == "too_deep"
