"""The swarm's options, declared once.

Each field of :class:`SwarmConfig` is one option, with its flag, type, default and
help in the field's metadata. From that one declaration come:

* the locust custom arguments (:func:`add_locust_arguments`; they show in
  locust's web UI unless ``web_ui`` is off),
* the ``store-harness swarm`` and ``sweep`` options (:func:`add_cli_options`;
  the access options, :mod:`harness.access`, join both too),
  which default to None so that only what the user gave is passed on to locust
  (:func:`locust_args`), and the locust default applies otherwise,
* the typed config each locust process reads (:meth:`SwarmConfig.from_locust`).

Importing this module imports no locust: ``store-harness swarm`` must not be
monkey-patched by gevent.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from harness import access as access_options
from harness.access import Access
from harness.commands import port_number
from harness.swarm.scenarios import DEFAULT_SCENARIO, SCENARIOS, Scenario, scenario_named

#: Where ``store-harness swarm`` offers an option: with its own options ("main"), among
#: the scenario knobs ("knob"), with the faults ("fault"), or not at all (None: set by
#: the command itself, like --run-dir from --out, or by the swarm's own processes).
CliGroup = Literal["main", "knob", "fault"] | None


@dataclass(frozen=True, slots=True)
class Option:
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    append: bool = False
    web_ui: bool = True
    cli: CliGroup = None
    cli_help: str | None = None
    #: A scenario override (Scenario.with_overrides takes it by the field's name).
    overrides: bool = False


def _option(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"option": Option(help, **kwargs)})


@dataclass(frozen=True)
class SwarmConfig:
    """What the swarm's options say, typed; one process reads it from locust's options."""

    scenario: str = _option(
        DEFAULT_SCENARIO,
        "what participants do (defaults for the options below)",
        choices=tuple(SCENARIOS),
        cli="main",
        cli_help="what participants do",
    )
    adapter: str | None = _option(
        None,
        "store adapter: an installed name or module:Class (default: the --url scheme's)",
        cli="main",
        cli_help="store adapter: an installed name or module:Class "
        "(default: chosen by the --url scheme; `store-harness adapters` lists them)",
    )
    session: str | None = _option(
        None,
        "session name, or prefix with --sessions (default: a new one for each run)",
        cli="knob",
        cli_help="session name",
    )
    sessions: int = _option(
        1,
        "spread participants over N sessions",
        type=int,
        cli="knob",
        cli_help="spread over N sessions",
    )
    key_space: int | None = _option(
        None, "keys participants touch", type=int, cli="knob", overrides=True
    )
    value_size: int | None = _option(
        None, "characters per written value", type=int, cli="knob", overrides=True
    )
    observers: int | None = _option(
        None, "keys each participant observes", type=int, cli="knob", overrides=True
    )
    writer_fraction: float | None = _option(
        None, "share that writes", type=float, cli="knob", overrides=True
    )
    weight_set: int | None = _option(
        None, "task weight of set", type=int, cli="knob", overrides=True
    )
    weight_get: int | None = _option(
        None, "task weight of get", type=int, cli="knob", overrides=True
    )
    weight_delete: int | None = _option(
        None, "task weight of delete", type=int, cli="knob", overrides=True
    )
    weight_observe: int | None = _option(
        None, "task weight of observe/stopObserving", type=int, cli="knob", overrides=True
    )
    think_time: str | None = _option(None, "seconds between tasks: MIN,MAX", cli="knob")
    write_rate: float = _option(
        0.0,
        "open model: writes/s per writing participant (0: closed loop)",
        type=float,
        cli="knob",
    )
    request_timeout: float = _option(10.0, "seconds per request", type=float, cli="knob")
    history_seconds: float = _option(
        0.0,
        "record histories for the consistency check only this long (0: the whole run)",
        type=float,
        cli="knob",
        cli_help="record histories for the consistency check only this long, then go on "
        "unrecorded (default 0: the whole run, judged as it is recorded, key by key)",
    )
    #: One wall-clock instant for every process; the master sets it at the start.
    history_until: float = _option(0.0, argparse.SUPPRESS, type=float, web_ui=False)
    #: The run's id, set by the master at the start and written to run.json: a worker
    #: that finds it there shares the master's run directory (see Recorders.close).
    run_id: str | None = _option(None, argparse.SUPPRESS, web_ui=False)
    run_dir: str | None = _option(None, "run directory (default runs/<UTC time>)")
    slo: list[str] = field(
        default_factory=list,
        metadata={
            "option": Option(
                "threshold, e.g. notify.p99<50ms",
                append=True,
                cli="main",
                cli_help="e.g. 'notify.p99<50ms'",
            )
        },
    )
    slo_file: list[str] = field(
        default_factory=list,
        metadata={
            "option": Option(
                "thresholds in a TOML file", append=True, cli="main", cli_help="thresholds in TOML"
            )
        },
    )
    prometheus: int | None = _option(
        None,
        "serve live metrics at :PORT/metrics during the run (0: a free port)",
        type=port_number,
        web_ui=False,
        cli="main",
        cli_help="serve live metrics for Prometheus at :PORT/metrics during the run "
        "(the master's, in a distributed run; 0: a free port)",
    )
    churn: float = _option(
        0.0,
        "participants leaving and rejoining per second, per process (0: none)",
        type=float,
        cli="fault",
        cli_help="participants leaving and rejoining /s/process",
    )
    # Set by `store-harness swarm` for its fault injection (harness.faults).
    epoch_file: str | None = _option(None, "server epochs", web_ui=False)
    faults_json: str | None = _option(None, "faults, for run.json", web_ui=False)
    #: Set by `store-harness run`: the resolved stages (harness.plan), for the load shape,
    #: the write rates and the live thresholds; the master adds the run's start to it.
    plan: str | None = _option(None, "the run's stages, JSON (store-harness run)", web_ui=False)
    live_interval: float = _option(
        2.0, "seconds between live console lines (0: off)", type=float, web_ui=False
    )
    #: --token-secret, --header... : declared once in harness.access for every command.
    access: Access = field(default_factory=Access, metadata={"option": None})

    @classmethod
    def from_locust(cls, options: Any) -> SwarmConfig:
        """The config locust parsed; a missing or empty value is the default."""
        values = {}
        for f, option in _options():
            value = getattr(options, f.name, None)
            if value is None or (value == "" and option.type is None):
                continue
            values[f.name] = option.type(value) if option.type is not None else value
        return cls(**values, access=Access.from_args(options))

    def session_names(self) -> list[str]:
        """The sessions participants spread over (--sessions N names them PREFIX-0...)."""
        count = max(1, self.sessions)
        base = self.session or "swarm"
        return [base] if count == 1 else [f"{base}-{n}" for n in range(count)]

    def build_scenario(self) -> Scenario:
        """The chosen scenario with the knobs given."""
        think_min = think_max = None
        if self.think_time:
            low, _, high = self.think_time.partition(",")
            try:
                think_min = float(low)
                think_max = float(high or low)
            except ValueError:
                think_min, think_max = -1.0, -1.0  # reported by validate()
        overrides = {f.name: getattr(self, f.name) for f, option in _options() if option.overrides}
        return scenario_named(self.scenario or DEFAULT_SCENARIO).with_overrides(
            **overrides, think_min=think_min, think_max=think_max
        )


def _options() -> Iterator[tuple[Any, Option]]:
    for f in fields(SwarmConfig):
        if f.metadata["option"] is not None:
            yield f, f.metadata["option"]


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_locust_arguments(parser: Any) -> None:
    """Every option as a locust custom argument (``init_command_line_parser``)."""
    for f, option in _options():
        kwargs: dict[str, Any] = {
            "default": [] if option.append else f.default,
            "help": option.help,
        }
        if option.append:
            kwargs["action"] = "append"
        if option.type is not None:
            kwargs["type"] = option.type
        if option.choices is not None:
            kwargs["choices"] = list(option.choices)
        if not option.web_ui:
            kwargs["include_in_web_ui"] = False
        parser.add_argument(flag(f.name), **kwargs)
    access_options.add_options(parser, locust=True)


def add_cli_options(parser: argparse._ActionsContainer, group: CliGroup) -> None:
    """The options ``store-harness swarm`` offers in ``group``; None unless given."""
    for f, option in _options():
        if option.cli != group:
            continue
        kwargs: dict[str, Any] = {"help": option.cli_help or option.help}
        if option.append:
            kwargs.update(action="append", default=[])
        elif option.choices is not None:
            kwargs.update(choices=list(option.choices), default=f.default)
        else:
            kwargs["default"] = None
        if option.type is not None:
            kwargs["type"] = option.type
        parser.add_argument(flag(f.name), **kwargs)


def knob_names() -> list[str]:
    return [f.name for f, option in _options() if option.cli == "knob"]


def scenario_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario overrides among ``args`` (for validating them before any load)."""
    return {f.name: getattr(args, f.name) for f, option in _options() if option.overrides}


def locust_args(args: argparse.Namespace) -> list[str]:
    """The locust arguments for what ``args`` gave among the offered options.

    The access options' credentials are not among them: see :func:`locust_env`.
    """
    command: list[str] = []
    for f, option in _options():
        if option.cli is None:
            continue
        value = getattr(args, f.name, None)
        if option.append:
            for item in value or []:
                command += [flag(f.name), str(item)]
        elif value is not None and (option.cli != "fault" or value):
            command += [flag(f.name), str(value)]
    return command + Access.from_args(args).command_args()


def locust_env(args: argparse.Namespace) -> dict[str, str]:
    """The locust process's environment: the credentials travel here, not in its argv."""
    return Access.from_args(args).environment()
