"""The streaming checker gives the verdict check() gives: on every golden history, on
histories of a correct store with one event changed, and on random event soups.

Agreement is the same result, the same anomaly counts by kind (so the same kinds),
the same stats and the same notes. Thousands of examples in all, in well under a
minute: each example is small, and the segments go to one temporary directory.
"""

from __future__ import annotations

import copy
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_checker_properties import HEADER, _invoke_observes, histories

from harness.checker import Verdict, check
from harness.checker.stream import StreamChecker, check_files
from harness.errors import HistoryError
from harness.history.reader import History, read_history

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.jsonl"))
Event = dict[str, Any]
#: Thousands of examples over the tests below, each a few milliseconds.
MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def spill() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="stream-") as directory:
        yield Path(directory)


def _agreed(whole: Verdict, streamed: Verdict, *, ordered: bool = True) -> None:
    assert (streamed.result, streamed.counts) == (whole.result, whole.counts), (
        whole.to_text() + "\n---- streamed:\n" + streamed.to_text()
    )
    assert streamed.stats == whole.stats
    if ordered:
        assert streamed.notes == whole.notes
    else:
        assert sorted(streamed.notes) == sorted(whole.notes)


_runs = iter(range(1 << 30))


def _streamed(events: list[Event], spill: Path) -> Verdict:
    checker = StreamChecker(spill / f"{next(_runs)}")
    checker.feed_history(History.from_events(events))
    try:
        return checker.verdict()
    finally:
        checker.segments.remove()


@pytest.mark.parametrize("path", GOLDEN, ids=[p.name for p in GOLDEN])
def test_every_golden_history_gets_the_same_verdict(path: Path, tmp_path: Path) -> None:
    whole = check(read_history([path]))
    streamed = check_files([path], tmp_path / "segments")
    _agreed(whole, streamed)
    assert [a.kind for a in streamed.examples.values()] == list(whole.examples)
    assert not (tmp_path / "segments").exists()


@settings(MANY, max_examples=1000)
@given(histories(), st.data())
def test_a_correct_store_with_one_event_changed(
    spill: Path, events: list[Event], data: st.DataObject
) -> None:
    events = [HEADER, *_one_changed(copy.deepcopy(_invoke_observes(events))[1:], data)]
    _agreed(check(events), _streamed(events, spill))


def _one_changed(body: list[Event], data: st.DataObject) -> list[Event]:
    """``body`` with one event dropped, copied, moved in time, made unknown or revalued."""
    index = data.draw(st.integers(0, len(body) - 1))
    change = data.draw(st.sampled_from(("drop", "copy", "retime", "unknown", "revalue")))
    if change == "drop":
        del body[index]
    elif change == "copy":
        body.insert(data.draw(st.integers(0, len(body))), dict(body[index]))
    elif change == "retime":
        body[index]["t"] = data.draw(st.integers(0, 2000))
    elif change == "unknown" and body[index]["ev"] == "done":
        body[index] = {**body[index], "result": "unknown"}
    elif "value" in body[index]:
        body[index]["value"] = data.draw(st.sampled_from([None, "alice#0", "bob#1"]))
    return body


def test_keys_judged_in_two_processes_give_the_same_verdict(tmp_path: Path) -> None:
    """The verdict's parallel path (forked processes judge keys, results merged in key
    order) on every golden history and a few hundred soups: check()'s verdict, and
    the very anomalies, in the order, that judging in one process gives."""
    histories = [read_history([path]) for path in GOLDEN]
    histories += [History.from_events(soup(seed)) for seed in range(300)]
    for number, history in enumerate(histories):
        verdicts = []
        for workers in (2, 1):
            checker = StreamChecker(
                tmp_path / f"{number}-{workers}", workers=workers, parallel_min_events=0
            )
            checker.feed_history(history)
            verdicts.append(checker.verdict())
        parallel, alone = verdicts
        _agreed(check(history), parallel)
        assert [a.message for a in parallel.anomalies] == [a.message for a in alone.anomalies]


CONNS = ("c1", "c2", "c3")
KEYS = ("k0", "k1", "k2")
VALUES = (None, "a", "b", "c")


def soup(seed: int) -> list[Event]:
    """Any mix of events on a few connections, sessions and keys: mostly invalid,
    with every kind of event and result, so every check and note gets exercised.

    Drawn from a seed rather than event by event: hypothesis would spend most of
    the test drawing; a failing example names its seed.
    """
    rng = random.Random(seed)
    out: list[Event] = [HEADER]
    sessions = rng.choice((("s",), ("s", "t")))
    t = 0
    for request in range(1, rng.randint(1, 40) + 1):
        t += rng.randint(0, 5)
        conn = rng.choice(CONNS)
        common = {"t": t, "conn": conn, "p": conn, "s": rng.choice(sessions)}
        kind = rng.choice(("set", "set", "get", "observe", "stop", "update", "closed", "join"))
        key, value = rng.choice(KEYS), rng.choice(VALUES)
        observer = f"o{rng.randint(0, 3)}"
        if kind == "update":
            by = rng.choice(CONNS)
            out.append({"ev": "update", **common, "obs": observer, "key": key, "value": value,
                        "by": by})  # fmt: skip
            continue
        if kind == "closed":
            out.append({"ev": "closed", **common, "by_client": rng.choice((True, False, None)),
                        "violation": rng.choice((None, True))})  # fmt: skip
            continue
        invoke: Event = {"ev": "invoke", **common, "req": request, "op": kind}
        done: Event = {"ev": "done", **common, "req": request, "op": kind}
        if kind in ("set", "get", "observe"):
            invoke["key"] = done["key"] = key
        if kind == "set":
            invoke["value"] = value
            done["result"] = rng.choice(("ok", "ok", "unknown", "error", "none"))
            if done["result"] == "error":
                done["code"] = rng.choice(("KEY_LIMIT_EXCEEDED", "VALUE_TOO_LARGE"))
        elif kind == "get":
            done.update(result=rng.choice(("value", "unknown", "none")), value=value)
        elif kind == "observe":
            done.update(result=rng.choice(("observing", "observing", "none")), obs=observer)
        elif kind == "stop":
            invoke["obs"] = observer
            done["result"] = rng.choice(("ok", "none"))
        else:
            done.update(result="joined", maxKeys=rng.randint(1, 2))
        out.append({k: v for k, v in invoke.items() if v is not None or k == "value"})
        if done["result"] != "none":
            done["t"] = t + rng.randint(0, 8)
            out.append(done)
    if rng.random() < 0.3:
        out.append({"ev": "violation", "t": t, "conn": "c1", "reason": "bad frame",
                    "kind": "update_after_stop"})  # fmt: skip
    return out


seeds = st.integers(0, 2**32).map(soup)


@MANY
@given(seeds)
def test_random_event_soups(spill: Path, events: list[Event]) -> None:
    _agreed(check(events), _streamed(events, spill))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seeds, seeds, st.booleans(), st.booleans())
def test_files_of_several_processes_read_as_they_grow(
    spill: Path, first: list[Event], second: list[Event], one_clock: bool, cut_short: bool
) -> None:
    """Two processes' files, fed a few lines at a time as a follower reads them."""
    directory = spill / f"files-{next(_runs)}"
    directory.mkdir()
    header = {**HEADER, "clock": HEADER["clock"] if one_clock else "other/boot"}
    # Connections are one process's own (their ids carry its tag), as a recorder's are.
    second = [{**e, "conn": "b-" + e["conn"]} if "conn" in e else e for e in second[1:]]
    texts = [
        b"".join(orjson.dumps(e) + b"\n" for e in first),
        b"".join(orjson.dumps(e) + b"\n" for e in [header, *second]),
    ]
    if cut_short:
        texts[1] += b'{"ev": "upda'  # a crash mid-line
    paths = [directory / "a.jsonl", directory / "b.jsonl"]
    checker = StreamChecker(directory / "segments")
    for path in paths:
        path.write_bytes(b"")
    for step in range(0, max(len(t) for t in texts) + 200, 200):
        for path, text in zip(paths, texts, strict=True):
            path.write_bytes(text[: step + 200])
            checker.feed_file(path)
        checker.judge_so_far()
    for path in paths:
        checker.finish_file(path)
    # Read a few lines of each file in turn, keys start in another order: so do the notes.
    _agreed(check(read_history(paths)), checker.verdict(), ordered=False)


@settings(MANY, max_examples=300)
@given(histories(), st.integers(1, 8))
def test_a_correct_store_read_piece_by_piece_shows_no_anomaly_so_far(
    spill: Path, events: list[Event], pieces: int
) -> None:
    """Judged on the history so far, again and again, a valid run shows nothing: what
    is found so far is sound."""
    events = _invoke_observes(events)
    directory = spill / f"so-far-{next(_runs)}"
    directory.mkdir()
    path = directory / "a.jsonl"
    lines = [orjson.dumps(e) + b"\n" for e in events]
    checker = StreamChecker(directory / "segments", margin_ns=0)
    step = max(1, len(lines) // pieces)
    judged = 0
    for end in range(step, len(lines) + step, step):
        path.write_bytes(b"".join(lines[:end]))
        checker.feed_file(path)
        judged += checker.judge_so_far(every_s=0)
    assert judged > 0
    assert checker.anomalies_so_far == 0, [a.message for k in checker.live.kept.values() for a in k]
    checker.finish_file(path)
    assert checker.verdict().valid


def _epochs(first: list[Event], second: list[Event]) -> list[Event]:
    """Two sessions one after the other, as a server restart makes them: each
    participant joins, and every one of the first has left before the second starts."""
    out = [HEADER]
    offset = 0
    for epoch, events in enumerate((first, second)):
        body = [dict(e) for e in events[1:]]
        conns = sorted({e["conn"] for e in body if "conn" in e})
        for number, conn in enumerate(conns):
            join = {"conn": conn, "p": conn, "s": "s", "req": 10_000 + number, "op": "join"}
            body.insert(0, {"ev": "done", "t": 0, "result": "joined", "maxKeys": 2, **join})
            body.insert(0, {"ev": "invoke", "t": 0, **join})
        for event in body:
            event["t"] += offset
            if "conn" in event:
                event["conn"] = f"e{epoch}-{event['conn']}"
            if "s" in event:
                event["s"] = f"s.r{epoch}"
        offset = max(e["t"] for e in body) + 10
        out.extend(body)
    return out


def _followed(events: list[Event], directory: Path, pieces: int) -> StreamChecker:
    """A checker that followed ``events`` written as one file in ``pieces`` steps."""
    directory.mkdir()
    path = directory / "a.jsonl"
    lines = [orjson.dumps(e) + b"\n" for e in events]
    checker = StreamChecker(directory / "segments", margin_ns=0)
    step = max(1, len(lines) // pieces)
    for end in range(step, len(lines) + step, step):
        path.write_bytes(b"".join(lines[:end]))
        checker.feed_file(path)
        checker.judge_so_far(every_s=0)
    checker.finish_file(path)
    return checker


@settings(MANY, max_examples=600)
@given(histories(), histories(), st.integers(2, 12), st.booleans(), st.data())
def test_a_finished_session_judged_early_gets_the_verdict_check_gives(
    spill: Path,
    first: list[Event],
    second: list[Event],
    pieces: int,
    changed: bool,
    data: st.DataObject,
) -> None:
    """A session whose participants have all left is judged during the run and its
    judgement reused at the end: the verdict is still check()'s, anomalies and all."""
    events = _epochs(_invoke_observes(first), _invoke_observes(second))
    if changed:
        events = [HEADER, *_one_changed(events[1:], data)]
        events[1:] = sorted(events[1:], key=lambda e: e["t"])
    checker = _followed(events, spill / f"epochs-{next(_runs)}", pieces)
    _agreed(check(events), checker.verdict())


@settings(max_examples=20, deadline=None)
@given(histories(), histories())
def test_finished_sessions_are_reused_unless_anything_of_them_came_after(
    spill: Path, first: list[Event], second: list[Event]
) -> None:
    events = _epochs(_invoke_observes(first), _invoke_observes(second))
    directory = spill / f"reuse-{next(_runs)}"
    checker = _followed(events, directory, pieces=20)
    # Both sessions ended inside the history: each was judged before the end.
    assert set(checker.finals) == {"s.r0", "s.r1"}
    # A late participant reads a key of the first session: that one is judged again.
    late = {"conn": "late", "p": "late", "s": "s.r0", "req": 1, "op": "get", "key": "k0"}
    t = events[-1]["t"] + 1
    value = next(
        (e["value"] for e in reversed(events) if e.get("op") == "set" and e.get("s") == "s.r0"
         and e.get("key") == "k0" and e["ev"] == "invoke"),
        None,
    )  # fmt: skip
    tail = [{"ev": "invoke", "t": t, **late},
            {"ev": "done", "t": t + 1, "result": "value", "value": value, **late}]  # fmt: skip
    with (directory / "a.jsonl").open("ab") as file:
        file.write(b"".join(orjson.dumps(e) + b"\n" for e in tail))
    checker.finish_file(directory / "a.jsonl")
    verdict = checker.verdict()
    assert checker.reused_sessions == 1
    _agreed(check([*events, *tail]), verdict)


def test_segments_left_by_an_earlier_checker_are_not_appended_to(tmp_path: Path) -> None:
    """A follower that crashed leaves its segments; the next checker of the directory
    starts each segment afresh rather than reading the old frames as its own."""
    path = GOLDEN[0]
    spill = tmp_path / "segments"
    spill.mkdir()
    for index in range(8):
        (spill / f"{index}.seg").write_bytes(b"left by a checker that crashed")
    _agreed(check(read_history([path])), check_files([path], spill))


def test_a_damaged_segment_is_a_history_error_naming_it(tmp_path: Path) -> None:
    checker = StreamChecker(tmp_path / "segments")
    checker.finish_file(GOLDEN[0])
    checker.segments.finish()
    session_key, segment = next(iter(checker.segments.keys.items()))
    data = segment.path.read_bytes()
    segment.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HistoryError, match=rf"{segment.path}: a frame is damaged"):
        checker.segments.load(session_key)
