"""A user's adapter, written only from docs/adapters.md and installed as a package of its
own with an entry point, runs a swarm and a conformance run (issue 13's "done when")."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.adapter_helpers import valid_swarm
from tests.adapters.kvws_server import KvwsServer

DOC = Path(__file__).parents[2] / "docs" / "adapters.md"


def doc_block(language: str) -> str:
    """The first ``language`` code block of docs/adapters.md, exactly as printed."""
    match = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/adapters.md has no {language} block"
    return match.group(1)


@pytest.fixture(scope="module")
def installed_adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The doc's adapter installed into a folder of its own; the environment that sees it."""
    root = tmp_path_factory.mktemp("kvws-package")
    package = root / "src"
    package.mkdir()
    (package / "store_harness_adapter_kvws.py").write_text(doc_block("python"))
    # The doc's pyproject, with the local build settings a package needs to install offline.
    pyproject = doc_block("toml").replace(
        'dependencies = ["store-harness", "websocket-client"]\n', ""
    )
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        + pyproject
        + '\n[tool.setuptools]\npy-modules = ["store_harness_adapter_kvws"]\n'
    )
    site = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(package)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    yield env


@pytest.fixture(scope="module")
def kvws() -> Iterator[KvwsServer]:
    with KvwsServer() as server:
        yield server


def store_harness(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip


def test_the_installed_adapter_is_listed_with_its_capabilities(
    installed_adapter: dict[str, str],
) -> None:
    done = store_harness(installed_adapter, "adapters", "--json")
    assert done.returncode == 0, done.stderr
    listed = {adapter["name"]: adapter for adapter in json.loads(done.stdout)}
    assert listed["kvws"]["schemes"] == ["kvws"]
    assert listed["kvws"]["capabilities"]["key_limit"] is None
    assert {"native", "etcd", "nats-kv"} <= set(listed)


@pytest.mark.slow
def test_a_swarm_through_the_installed_adapter_ends_valid(
    installed_adapter: dict[str, str],
    kvws: KvwsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in installed_adapter.items():
        monkeypatch.setenv(name, value)
    info = valid_swarm(kvws.url, tmp_path / "run")
    assert info["requests"].get("SET", 0) > 0 and info["violation_count"] == 0


@pytest.mark.slow
def test_conformance_through_the_installed_adapter_grades_semantic_cases(
    installed_adapter: dict[str, str], kvws: KvwsServer, tmp_path: Path
) -> None:
    done = store_harness(
        installed_adapter, "conformance", "--url", kvws.url, "--report-dir", str(tmp_path)
    )
    report = json.loads((tmp_path / "conformance.json").read_text())
    grades = {case["id"]: case for case in report["cases"]}
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    passed = {case_id for case_id, case in grades.items() if case["grade"] == "passed"}
    # The semantic requirements are judged through the adapter...
    for expected in (
        "R2.5-one-participant-two-connections",
        "R3.1-set-then-get",
        "R3.9-last-write-wins",
        "R4.1-exactly-once",
        "R4.5-stop-ends-deliveries",
    ):
        assert expected in passed, grades[expected]
    # ...and the wire-level ones are skipped, saying why.
    framing = [case for case_id, case in grades.items() if case_id.startswith("R1.")]
    assert framing and all(case["grade"] == "skipped" for case in framing)
    assert "its own protocol" in framing[0]["detail"]
    assert "no key limit: key-limit checks skipped" in report["not_promised"]
