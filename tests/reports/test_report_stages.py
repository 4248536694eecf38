"""A staged run's report: thresholds scoped to a stage, rates, the aborting threshold, marks."""

from __future__ import annotations

from pathlib import Path

import orjson

from harness.latency.histograms import new_histogram
from harness.latency.log import LatencyLog
from harness.latency.thresholds import gather
from harness.reports import build_report
from harness.run.directory import write_run_json

T0 = 1_800_000_000


def staged_run(tmp_path: Path, aborted: dict | None = None) -> Path:
    """Ten seconds: "calm" (0-5 s) notifies in 2 ms, "storm" (5-10 s) in 80 ms, 10 a second."""
    run_dir = tmp_path / "run"
    with LatencyLog(run_dir / "latency" / "p.jsonl") as log:
        for second in range(10):
            notify = new_histogram()
            for _ in range(10):
                notify.record_value(2_000 if second < 5 else 80_000)
            log.write_interval(T0 + second, {"notify": notify}, {})
    stages = [
        {"name": name, "start": start, "end": start + 5, "participants_from": 5,
         "participants": 5, "spawn_rate": 5, "write_from": 0, "write_to": 0}
        for name, start in (("calm", 0), ("storm", 5))
    ]  # fmt: skip
    info = {
        "complete": True, "started": T0, "ended": T0 + 10,
        "plan": {"origin": T0, "stages": stages},
    }  # fmt: skip
    if aborted:
        info["aborted"] = aborted
    write_run_json(run_dir, info)
    return run_dir


def test_stage_scoped_thresholds_judge_only_their_stage(tmp_path: Path) -> None:
    run_dir = staged_run(tmp_path)
    result = build_report(
        run_dir,
        out_dir=tmp_path / "out",
        thresholds=gather(
            ["notify.p99<10ms@calm", "notify.p99<10ms@storm", "notify.p99<10ms",
             "notify.rate>=10/s@storm", "notify.rate>11/s", "notify.p50<1ms@nowhere"]
        ),
    )  # fmt: skip
    assert [t["passed"] for t in result.figures["thresholds"]] == [
        True, False, False, True, False, False,
    ]  # fmt: skip
    assert result.figures["threshold_lines"][-1].endswith("(measured no data)")
    assert result.failed
    marks = result.figures["timeline"]["stages"]
    assert marks == [{"name": "calm", "offset": 0}, {"name": "storm", "offset": 5}]
    assert (tmp_path / "out" / "report.html").read_text().count('class="stage-mark"') >= 2


def test_the_threshold_that_stopped_the_run_fails_whatever_the_whole_run_says(
    tmp_path: Path,
) -> None:
    aborted = {"threshold": "notify.p99<100ms", "measured_text": "120 ms", "over": "the last 5s",
               "at_s": 9.0}  # fmt: skip
    run_dir = staged_run(tmp_path, aborted)
    slo = tmp_path / "slo.toml"
    slo.write_text('[[thresholds]]\nthreshold = "notify.p99<100ms"\nabort_on_fail = true\n')
    result = build_report(run_dir, out_dir=tmp_path / "out", thresholds=gather([], [slo]))
    (outcome,) = result.figures["thresholds"]
    assert outcome["passed"] is False and outcome["measured"] < 100_000
    assert (
        "it stopped the run: 120 ms over the last 5s, 9s in" in result.figures["threshold_lines"][0]
    )
    report = orjson.loads((tmp_path / "out" / "report.json").read_bytes())
    assert report["verdict"] == "failed"
