"""The swarm's options are declared once: locust's arguments, the CLI's and the config agree."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from harness import access
from harness.cli import build_parser
from harness.swarm import config
from harness.swarm.config import SwarmConfig


class _LocustParser(argparse.ArgumentParser):
    """Takes locust's include_in_web_ui keyword, as locust's own parser does."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()

    def add_argument(self, *names: Any, include_in_web_ui: bool = True, **kwargs: Any) -> Any:
        if not include_in_web_ui:
            self.hidden.add(names[0])
        return super().add_argument(*names, **kwargs)


def locust_parser() -> _LocustParser:
    parser = _LocustParser()
    config.add_locust_arguments(parser)
    return parser


def test_locust_defaults_are_the_config_defaults():
    assert SwarmConfig.from_locust(locust_parser().parse_args([])) == SwarmConfig()


def test_the_harness_own_arguments_stay_out_of_the_web_ui():
    # The access options too: credentials must not reach the web UI's forms.
    assert locust_parser().hidden == {
        "--history-until", "--epoch-file", "--faults-json", "--live-interval", "--prometheus",
        "--plan", "--run-id",
        *(access.flag(spec.name) for spec in access.FLAGS),
    }  # fmt: skip


def test_every_swarm_option_reaches_locust_as_given():
    argv = [
        "swarm", "--scenario", "notes", "--sessions", "3", "--key-space", "7",
        "--writer-fraction", "0.5", "--think-time", "0.1,0.2", "--write-rate", "2",
        "--history-seconds", "0", "--slo", "notify.p99<5s", "--slo", "errors<1%",
        "--slo-file", "t.toml", "--churn", "0.5", "--prometheus", "9646",
    ]  # fmt: skip
    args = build_parser().parse_args(argv)
    got = SwarmConfig.from_locust(locust_parser().parse_args(config.locust_args(args)))
    assert got.scenario == "notes" and got.sessions == 3 and got.key_space == 7
    assert got.writer_fraction == 0.5 and got.think_time == "0.1,0.2" and got.write_rate == 2.0
    assert got.history_seconds == 0.0  # given as 0: the whole run, not the default 60
    assert got.slo == ["notify.p99<5s", "errors<1%"] and got.slo_file == ["t.toml"]
    assert got.prometheus == 9646
    assert got.churn == 0.5


def test_options_not_given_are_not_passed_on():
    args = build_parser().parse_args(["swarm"])
    assert config.locust_args(args) == ["--scenario", "mixed"]


@pytest.mark.parametrize("command", ["swarm", "sweep"])
def test_every_cli_option_is_a_locust_argument(command):
    locust_flags = {a.option_strings[0] for a in locust_parser()._actions if a.option_strings}
    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    offered = {a.dest for a in sub._actions}
    for name in config.knob_names():
        assert name in offered and config.flag(name) in locust_flags


def test_sessions_and_scenario_come_from_the_config():
    swarm = SwarmConfig(session="m", sessions=2, scenario="notes", key_space=4, think_time="1")
    assert swarm.session_names() == ["m-0", "m-1"]
    scenario = swarm.build_scenario()
    assert scenario.key_space == 4 and scenario.think_min == scenario.think_max == 1.0
    assert SwarmConfig().session_names() == ["swarm"]


def test_local_worker_processes_get_a_master_port_of_their_own_on_loopback(tmp_path):
    # Locust's default master port would let two runs on one machine collide, or one
    # run's workers join the other's master.
    from harness.commands.swarm import locust_command

    args = build_parser().parse_args(["swarm", "--processes", "2"])
    command = locust_command(args, "ws://127.0.0.1:1/", tmp_path)
    value = {flag: command[i + 1] for i, flag in enumerate(command[:-1])}
    assert value["--master-bind-host"] == value["--master-host"] == "127.0.0.1"
    assert value["--master-bind-port"] == value["--master-port"] != "5557"
