"""A conformance transcript on lanes: requests paired with replies, updates as ticks, the frame
a failed case got outlined."""

from __future__ import annotations

from harness.conformance.case import TranscriptLine
from harness.reports.timeline.scene import ERROR, OK, UNKNOWN
from harness.reports.timeline.transcript import transcript_scene

UPDATE = '{"type":"update","observerId":"o1","key":"k","value":"after","updatedBy":{"id":"a"}}'


def test_frames_become_bars_ticks_and_marks() -> None:
    lines = [
        TranscriptLine(1.0, "alice", "sent", '{"type":"set","id":1,"key":"k","value":"v"}'),
        TranscriptLine(2.0, "bob", "sent", '{"type":"get","id":1,"key":"k"}'),
        TranscriptLine(3.0, "alice", "received", '{"type":"ok","id":1}'),
        TranscriptLine(4.0, "bob", "received", '{"type":"error","id":1,"code":"NOT_JOINED"}'),
        TranscriptLine(5.0, "alice", "received", UPDATE),
        TranscriptLine(6.0, "alice", "sent", '{"type":"stopObserving","id":2,"observerId":"o1"}'),
        TranscriptLine(7.0, "alice", "received", "not json"),
        TranscriptLine(8.0, "", "note", "waited 50 ms"),
    ]
    scene = transcript_scene(lines, quoted=UPDATE)
    assert [lane.name for lane in scene.lanes] == ["alice", "bob", "notes"]
    outcomes = [(scene.lanes[b.lane].name, b.label, b.outcome) for b in scene.bars]
    assert outcomes == [
        ("alice", "set k", OK),
        ("bob", "get k", ERROR),
        ("alice", "stopObserving", UNKNOWN),  # no reply came
    ]
    assert scene.events == len(lines)  # one mark a frame
    assert [m.kind for m in scene.marks if m.highlighted] == ["update"]  # the frame it got
    assert scene.raw[next(m.index for m in scene.marks if m.highlighted)] == UPDATE
