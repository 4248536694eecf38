"""Test files: what they may hold, and bad ones failing with one line naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.commands.run import swarm_options
from harness.errors import HarnessUsageError
from harness.plan import loader

GOOD = """\
url = "ws://127.0.0.1:9/"
scenario = "moderation"
key_space = 20
faults = ["latency=5ms"]
insecure = false
thresholds = []

[[stages]]
name = "ramp"
duration = "10s"
participants = 20
spawn_rate = 5

[[stages]]
preset = "join-storm"
participants = 50
duration = "1m"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.toml"
    path.write_text(text)
    return path


def load(path: Path) -> loader.TestFile:
    return loader.load(path, swarm_options())


def test_a_good_file_gives_options_by_their_flags_names_and_stages(tmp_path: Path) -> None:
    test = load(write(tmp_path, GOOD))
    assert test.options == {
        "url": "ws://127.0.0.1:9/",
        "scenario": "moderation",
        "key_space": 20,
        "fault": ["latency=5ms"],
        "insecure": False,
    }
    assert [s.name for s in test.stages] == ["ramp", "join-storm"]
    assert test.stages[1].participants == 50 and test.stages[1].duration == 60


@pytest.mark.parametrize(
    ("text", "line", "key", "complaint"),
    [
        ('scenario = "mixed"\nkey_spaces = 3\n', 2, "key_spaces", "did you mean 'key_space'"),
        ('scenario = "mixed"\nkey_space = "many"\n', 2, "key_space", "expected a whole number"),
        ('scenario = "chaos"\n', 1, "scenario", "is not one of mixed"),
        ("write_rate = true\n", 1, "write_rate", "expected a number"),
        ("users = 5\n", 1, "users", "the file calls it participants"),
        ('token_secret = "s3cret"\n', 1, "token_secret", "STORE_HARNESS_TOKEN_SECRET"),
        (
            '[[stages]]\nduration = "10s"\nparticipants = 5\n\n'
            '[[stages]]\nname = "late"\nstart = "5s"\nduration = "5s"\n',
            7,
            "stages[2].start",
            "while stage 'stage-1' runs until 10s: stages must not overlap",
        ),
        ('[[stages]]\nduration = "10s"\nparticpants = 5\n', 3, "stages[1].particpants", "use name"),
        ('[[stages]]\nduration = "soon"\n', 2, "stages[1].duration", "expected a duration"),
        ("[[stages]]\nparticipants = 5\n", 1, "stages[1]", "needs duration"),
        (
            '[[stages]]\nduration = "2s"\nparticipants = 100\nspawn_rate = 5\n',
            4,
            "stages[1].spawn_rate",
            "takes 20s, longer than the stage's 2s",
        ),
        ('[[stages]]\npreset = "stampede"\nduration = "1m"\n', 2, "stages[1].preset", "join-storm"),
        (
            '[[stages]]\npreset = "trickle-in"\nduration = "1m"\nwithin = "2s"\n',
            4,
            "stages[1].within",
            "unknown key for preset 'trickle-in'",
        ),
        (
            '[[stages]]\nduration = "1m"\nparticipants = 3\n\n[[thresholds]]\n'
            'threshold = "notify.p99<50"\n',
            5,
            "thresholds[1]",
            "needs a unit",
        ),
        (
            'thresholds = [{threshold = "fanout.p99<1s", abort_on_fail = true}]\n',
            1,
            "thresholds[1]",
            "cannot abort a run",
        ),
        (
            '[distribution]\nmaster = "nowhere"\nworkers = 2\n',
            2,
            "distribution.master",
            "HOST:PORT",
        ),
        (
            '[distribution]\nmaster = "h:5557"\nworkers = 0\n',
            3,
            "distribution.workers",
            "at least 1",
        ),
        ('participants = 5\n[[stages]]\nduration = "1m"\n', 1, "participants", "does not apply"),
        ('scenario = "mixed\n', 1, None, "not valid TOML"),
    ],
)
def test_bad_files_fail_with_one_line_naming_file_line_and_key(
    tmp_path: Path, capsys, text: str, line: int, key: str | None, complaint: str
) -> None:
    path = write(tmp_path, text)
    assert main(["run", "--dry-run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    where = f"{path}:{line}: " + (f"{key}: " if key else "")
    assert captured.err.startswith(f"store-harness run: error: {where}")
    assert complaint in captured.err


def test_the_loader_raises_a_usage_error_and_a_missing_file_is_one(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, '[[stages]]\nduration = 10\nparticipants = "ten"\n')
    with pytest.raises(HarnessUsageError, match=r":3: stages\[1\]\.participants: expected a whole"):
        load(path)
    assert main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read test file" in capsys.readouterr().err


def test_dry_run_prints_the_resolved_plan_and_flags_override_the_file(
    tmp_path: Path, capsys
) -> None:
    path = write(tmp_path, GOOD)
    assert main(["run", "--dry-run", str(path), "--url", "ws://127.0.0.1:7/"]) == 0
    out = capsys.readouterr().out
    assert "target ws://127.0.0.1:7/" in out  # the flag, not the file's ws://127.0.0.1:9/
    assert "2 stage(s), 1m10s, up to 50 participants" in out
    rows = [
        line.split()
        for line in out.splitlines()
        if line.startswith("  ramp") or "join-storm " in line
    ]
    assert rows == [
        ["ramp", "0s", "10s", "0", "->", "20", "5", "0"],
        ["join-storm", "10s", "1m10s", "20", "->", "50", "30", "0"],
    ]


def test_stages_refuse_users_and_run_time_flags(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GOOD)
    assert main(["run", "--dry-run", str(path), "--users", "5"]) == 2
    assert "--users do not apply" in capsys.readouterr().err


def test_a_file_without_stages_is_one_stage_of_its_participants_and_run_time(
    tmp_path: Path, capsys
) -> None:
    path = write(tmp_path, 'participants = 30\nspawn_rate = 10\nrun_time = "1m"\n')
    assert main(["run", "--dry-run", str(path), "--scale", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "1 stage(s), 30s, up to 15 participants" in out
    assert "processes: 1 on this machine" in out


@pytest.mark.parametrize("example", sorted(Path("examples").glob("*.toml")))
def test_every_example_resolves(example: Path, capsys) -> None:
    assert main(["run", "--dry-run", str(example)]) == 0
    assert "stage(s)" in capsys.readouterr().out


def test_distribution_needs_a_reachable_server_and_a_worker_needs_the_block(
    tmp_path: Path, capsys
) -> None:
    flat = 'participants = 4\nrun_time = "5s"\n'
    path = write(tmp_path, flat + '[distribution]\nmaster = "127.0.0.1:5557"\nworkers = 2\n')
    assert main(["run", "--dry-run", str(path), "--processes", "3"]) == 0
    out = capsys.readouterr().out
    assert "master at 127.0.0.1:5557, waiting up to 1m for 2 worker machine(s) of 3" in out
    assert main(["run", str(path)]) == 2
    assert "[distribution] needs url" in capsys.readouterr().err
    alone = write(tmp_path, flat)
    assert main(["run", str(alone), "--worker"]) == 2
    assert "--worker needs a [distribution] block" in capsys.readouterr().err


def test_the_readme_shows_the_join_storm_example_as_it_is() -> None:
    readme = Path("README.md").read_text()
    shown = readme.split("this is `examples/join-storm.toml`:\n\n```toml\n")[1].split("```")[0]
    example = Path("examples/join-storm.toml").read_text()
    assert shown == example[example.index("scenario = ") :]
