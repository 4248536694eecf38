"""A swarm against a faulty server names its verdict.html under the verdict line."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from faulty_servers import ReorderingServer
from test_swarm_runs import swarm

from harness.server.embedded import EmbeddedServer

pytestmark = pytest.mark.slow


def test_a_failing_swarm_prints_and_links_its_verdict_page(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with EmbeddedServer(ReorderingServer) as server:
        done = swarm(
            "--url", server.url, "--scenario", "notes", "--users", "6", "--spawn-rate", "6",
            "--run-time", "3s", "--out", str(run_dir),
        )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    at = lines.index("verdict: INVALID")
    page = run_dir / "verdict.html"
    assert lines[at + 1] == f"verdict.html: {page}"
    verdict = orjson.loads((run_dir / "verdict.json").read_bytes())
    html = page.read_text(encoding="utf-8")
    for kind, example in verdict["examples"].items():
        section = html.split(f'data-kind="{kind}"', 1)[1].split("</section>", 1)[0]
        # Each counterexample event is one outlined element of its anomaly's timeline.
        assert section.count(' cx"') + section.count(" cx ") == len(example["events"]), kind
        # ...drawn among the key's other events: the neighbourhood, not the quote alone.
        drawn = set(re.findall(r'data-ev="?(\d+)', section))
        assert len(drawn) > 2 * len(example["events"]), kind
    report = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert 'href="../verdict.html"' in report
