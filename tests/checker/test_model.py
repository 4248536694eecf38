"""The checker's model interface, porcupine's: partition, init, step, describe."""

from __future__ import annotations

from harness.checker import REGISTER, Model, linearizable
from harness.checker.operations import INF, OK, UNKNOWN, Read, Write
from harness.history.reader import History

HEADER = {"ev": "header", "clock": "c"}


def _write(value: str | None, inv: int, comp: int, status: str = OK) -> Write:
    return Write("alice", value, inv, comp, status, 0, comp, [])


def _read(value: str | None, inv: int, comp: int) -> Read:
    return Read("bob", value, inv, comp, 0, [])


def test_the_register_steps_like_porcupines_kv_model() -> None:
    state = REGISTER.init()
    assert state is None
    legal, state = REGISTER.step(state, ("set", "v1"), OK)
    assert legal and state == "v1"
    assert REGISTER.step(state, ("get", None), "v1") == (True, "v1")
    assert REGISTER.step(state, ("get", None), "v0") == (False, "v1")
    assert REGISTER.describe_operation(("set", "v1"), OK) == "set 'v1' -> ok"
    assert REGISTER.describe_operation(("get", None), None) == "get -> null"
    assert REGISTER.describe_state(None) == "the key is empty"
    assert REGISTER.describe_state("v1") == "the key holds 'v1'"


def test_the_search_steps_on_any_model() -> None:
    class Counter:
        """Each set adds one; a get returns how many sets came before it."""

        def partition(self, history):  # pragma: no cover - the search never partitions
            return REGISTER.partition(history)

        def init(self) -> int:
            return 0

        def step(self, state: int, input, output) -> tuple[bool, int]:
            return (True, state + 1) if input[0] == "set" else (output == str(state), state)

        def describe_operation(self, input, output) -> str:
            return f"{input[0]} {output}"

        def describe_state(self, state: int) -> str:
            return str(state)

    counter: Model[int] = Counter()
    ops = [_write("x", 0, 10), _write("y", 20, 30), _read("2", 40, 50)]
    assert linearizable(ops, counter).linearizable is True
    assert linearizable(ops, REGISTER).linearizable is False
    stale = linearizable([*ops[:2], _read("1", 40, 50)], counter)
    assert stale.linearizable is False and stale.state == 2


def test_a_failed_search_reports_the_state_it_reached() -> None:
    ops = [_write("v1", 0, 10), _write("v2", 20, 30), _read("v1", 40, 50)]
    result = linearizable(ops)
    assert result.linearizable is False and result.stuck is ops[2]
    assert result.state == "v2"
    # An unknown write may take effect any time after it was sent, or never.
    assert linearizable([_write("v1", 0, 10), _write("v2", 5, INF, UNKNOWN), ops[2]]).linearizable


def test_partition_splits_by_session_and_key_and_keeps_violations_apart() -> None:
    common = {"conn": "a", "p": "alice", "op": "set"}
    events = [
        HEADER,
        {"ev": "invoke", "t": 1, "req": 1, "s": "s1", "key": "k", "value": "v1", **common},
        {"ev": "done", "t": 2, "req": 1, "result": "ok", "conn": "a"},
        {"ev": "invoke", "t": 3, "req": 2, "s": "s2", "key": "k", "value": "v2", **common},
        {"ev": "invoke", "t": 4, "req": 3, "s": "s1", "key": "j", "value": "v3", **common},
        {"ev": "violation", "t": 5, "conn": "a", "reason": "a bad frame"},
    ]
    parts = REGISTER.partition(History.from_events(events))
    assert sorted(parts.keys) == [("s1", "j"), ("s1", "k"), ("s2", "k")]
    assert [w.status for w in parts.keys[("s1", "k")].writes] == [OK]
    assert [w.status for w in parts.keys[("s2", "k")].writes] == [UNKNOWN]  # never answered
    assert [v.reason for v in parts.violations] == ["a bad frame"]
    assert parts.requests == 3
