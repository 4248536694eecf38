"""harness.run.values: every value the harness writes reads back (the checker relies on it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.run.values import WrittenValue, make_value, parse_value

writers = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20)


@given(
    writer=writers,
    seq=st.integers(0, 2**63),
    wall_ns=st.integers(0, 2**64),
    size=st.integers(0, 300),
)
def test_make_then_parse_round_trips(writer, seq, wall_ns, size):
    value = make_value(writer, seq, size, wall_ns)
    assert parse_value(value) == WrittenValue(writer, seq, wall_ns)
    assert len(value) == max(size, len(f"{writer}#{seq}@{wall_ns}"))


def test_make_value_stamps_the_current_time_by_default():
    parsed = parse_value(make_value("p1", 7))
    assert parsed is not None and parsed.writer == "p1" and parsed.seq == 7 and parsed.wall_ns > 0


@pytest.mark.parametrize(
    "value", [None, "", "true", "~~~", "#1@2", "a#1@", "a#@2", "a#x@2", "a#1@2x", "a1@2"]
)
def test_values_the_harness_did_not_write_parse_as_none(value):
    assert parse_value(value) is None
