"""Drive the runner with hypothesis: generate batches, and shrink the first one that fails.

Hypothesis runs in a worker thread (its engine is synchronous) and each test
case hops onto the caller's event loop to talk to the server. One test case is
one batch. Hypothesis's own machinery does the shrinking, so a failing batch of
dozens of frames comes back as the few frames that still fail, each as simple
as hypothesis could make it.

Bounds: generation stops once the frame or time budget is spent (a private
BaseException ends hypothesis's run without a shrink); shrinking has its own
time budget, after which only the smallest failing batch found so far still
"fails" (replayed from memory), so hypothesis finishes at once and reports it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from harness.access import Access
from harness.adapters.preflight import preflight_join
from harness.errors import HarnessUsageError, Unreachable

from .frames import Frame
from .runner import BatchRunner, Finding
from .strategies import batches

DEFAULT_FRAMES = 2_000
DEFAULT_SECONDS = 30.0


@dataclass
class FuzzResult:
    """What a fuzz run did and, if the server failed, the smallest failing input."""

    seed: int
    frames_sent: int = 0
    #: Joins the server accepted: 0 against a store that checks tokens and was given
    #: none means the frames never got past the join.
    joins_accepted: int = 0
    batches: int = 0
    seconds: float = 0.0
    finding: Finding | None = None
    #: The shrunk failing batch (empty when nothing was found).
    frames: list[Frame] = field(default_factory=list)
    #: Frames in the batch that first failed, before shrinking.
    original_size: int = 0
    shrink_attempts: int = 0
    #: Whether replaying ``frames`` on a fresh session failed again (None: not tried).
    reproduced: bool | None = None

    @property
    def failed(self) -> bool:
        return self.finding is not None


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str  # "fuzzing" or "shrinking"
    frames_sent: int
    batches: int
    findings: int
    smallest: int  # frames in the smallest failing batch so far (0: none)


ProgressCallback = Callable[[Progress], None]


class _BudgetSpent(BaseException):
    """Ends hypothesis's run cleanly: a BaseException is not a test failure to shrink."""


class _ServerGone(BaseException):
    """The server no longer accepts connections, so no further batch can be judged."""


class _Failed(Exception):
    """Every failing batch raises this, from one line, so hypothesis sees one bug to shrink."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.describe())
        self.finding = finding


async def fuzz(
    url: str,
    *,
    frames: int | None = DEFAULT_FRAMES,
    seconds: float | None = DEFAULT_SECONDS,
    seed: int = 0,
    batch: int = 50,
    timeout: float = 2.0,
    shrink_seconds: float = 60.0,
    progress: ProgressCallback | None = None,
    progress_every: float = 3.0,
    access: Access | None = None,
) -> FuzzResult:
    """Fuzz the server at ``url`` until the frame or time budget is spent or it fails.

    ``frames`` and ``seconds`` bound the generation (the batch that crosses a
    bound still completes); None lifts that bound. Raises PreflightFailed when
    the server cannot be joined at all. ``access`` gives the preflight's and the
    audits' joins their tokens, and every connection its handshake and TLS settings.
    """
    if frames is None and seconds is None:
        raise HarnessUsageError("fuzzing needs a bound: frames, seconds or both")
    runner = await _runner(url, timeout, access)
    fuzzer = _Fuzzer(runner, asyncio.get_running_loop(), frames, seconds, shrink_seconds)
    fuzzer.progress, fuzzer.progress_every = progress, progress_every
    result = await asyncio.to_thread(fuzzer.explore, seed, batch)
    if result.finding is not None and result.finding.kind != "server-gone":
        try:
            result.reproduced = await runner.run(result.frames) is not None
        except Unreachable:
            result.reproduced = None
    return result


async def _runner(url: str, timeout: float, access: Access | None) -> BatchRunner:
    access = access or Access()
    joined = await preflight_join(
        url,
        timeout=max(timeout, 1.0),
        session_prefix="fuzz-preflight",
        token=access.token_for,
        unauthorized_hint=" (pass --token-secret, --token, --token-file or --token-cmd)",
        **access.client_options(),
    )
    return BatchRunner(url, joined.limits, timeout=timeout, access=access)


async def replay(
    url: str, frames: Sequence[Frame], *, timeout: float = 2.0, access: Access | None = None
) -> Finding | None:
    """Send a replay file's frames on a fresh session; the finding, or None if it now passes."""
    runner = await _runner(url, timeout, access)
    try:
        return await runner.run(frames)
    except Unreachable as exc:
        return Finding("not-alive", str(exc))


class _Fuzzer:
    def __init__(
        self,
        runner: BatchRunner,
        loop: asyncio.AbstractEventLoop,
        frames: int | None,
        seconds: float | None,
        shrink_seconds: float,
    ) -> None:
        self.runner = runner
        self.loop = loop
        self.max_frames = frames
        self.max_seconds = seconds
        self.shrink_seconds = shrink_seconds
        self.progress: ProgressCallback | None = None
        self.progress_every = 3.0
        self.started = time.monotonic()
        self.first_failure_at: float | None = None
        self.failures: dict[tuple[Frame, ...], Finding] = {}
        self.smallest: tuple[Frame, ...] | None = None
        self.last_failing: tuple[Frame, ...] | None = None
        self.batches = 0
        self.attempts = 0
        self.original_size = 0
        self._last_report = time.monotonic()

    def explore(self, seed_value: int, batch: int) -> FuzzResult:
        result = FuzzResult(seed_value)

        @settings(
            max_examples=10**9,  # the frame and time budgets end the run, not a count
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @hypothesis_seed(seed_value)
        @given(batches(batch, self.runner.limits.max_value_bytes))
        def one_batch(frames: list[Frame]) -> None:
            finding = self.run_batch(tuple(frames))
            if finding is not None:
                raise _Failed(finding)

        try:
            one_batch()
        except _Failed:
            pass  # the run's state below says what failed and how small it got
        except (_BudgetSpent, _ServerGone):
            pass
        result.frames_sent = self.runner.frames_sent
        result.joins_accepted = self.runner.joins_accepted
        result.batches = self.batches
        result.seconds = time.monotonic() - self.started
        result.shrink_attempts = self.attempts
        best = self.smallest or self.last_failing
        if best is not None:
            result.finding = self.failures[best]
            result.frames = list(best)
            result.original_size = self.original_size
        return result

    def run_batch(self, frames: tuple[Frame, ...]) -> Finding | None:
        now = time.monotonic()
        if self.first_failure_at is None:
            if self._spent(now):
                raise _BudgetSpent
            self.batches += 1
        else:
            self.attempts += 1
            if frames in self.failures:
                return self.failures[frames]
            if now - self.first_failure_at > self.shrink_seconds:
                return None  # out of shrinking time: only known failures fail now
        try:
            finding = asyncio.run_coroutine_threadsafe(self.runner.run(frames), self.loop).result()
        except Unreachable as exc:
            if self.first_failure_at is None:
                self.failures[frames] = Finding("server-gone", f"before a batch: {exc}")
                self.last_failing = frames
                self.original_size = len(frames)
            raise _ServerGone from None
        if finding is not None:
            self._record(frames, finding)
        self._report()
        return finding

    def _record(self, frames: tuple[Frame, ...], finding: Finding) -> None:
        if self.first_failure_at is None:
            self.first_failure_at = time.monotonic()
            self.original_size = len(frames)
        self.failures[frames] = finding
        self.last_failing = frames
        if self.smallest is None or _size(frames) < _size(self.smallest):
            self.smallest = frames

    def _spent(self, now: float) -> bool:
        if self.max_frames is not None and self.runner.frames_sent >= self.max_frames:
            return True
        return self.max_seconds is not None and now - self.started >= self.max_seconds

    def _report(self) -> None:
        now = time.monotonic()
        if self.progress is None or now - self._last_report < self.progress_every:
            return
        self._last_report = now
        phase = "fuzzing" if self.first_failure_at is None else "shrinking"
        smallest = len(self.smallest) if self.smallest else 0
        self.progress(
            Progress(phase, self.runner.frames_sent, self.batches, len(self.failures), smallest)
        )


def _size(frames: Sequence[Frame]) -> tuple[int, int]:
    # Fewer frames first, then fewer bytes: the order a reader cares about.
    return len(frames), sum(len(f.data) for f in frames)


__all__ = ["DEFAULT_FRAMES", "DEFAULT_SECONDS", "FuzzResult", "Progress", "fuzz", "replay"]
