"""A bounded protocol fuzzer: hostile frames, judged frame by frame, failures shrunk.

    result = await fuzz("ws://127.0.0.1:8765/", frames=500, seed=1)
    if result.failed:
        write_frames("failure.jsonl", result.frames)
        print(result.finding.describe())

Frames come from hypothesis strategies (:mod:`.strategies`), each answer is
judged by :mod:`.oracle` against what the spec requires of a server whatever
its JSON parser (:mod:`.jsontext` reads a frame as each kind of correct parser
does), :mod:`.runner` moves them over real sockets, and :mod:`.engine` lets
hypothesis shrink a failing batch to a replayable frame list (:mod:`.frames`).
"""

from harness.fuzz.engine import DEFAULT_FRAMES, DEFAULT_SECONDS, FuzzResult, Progress, fuzz, replay
from harness.fuzz.frames import Frame, dump_frames, read_frames, write_frames
from harness.fuzz.runner import Finding

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_SECONDS",
    "Finding",
    "Frame",
    "FuzzResult",
    "Progress",
    "dump_frames",
    "fuzz",
    "read_frames",
    "replay",
    "write_frames",
]
