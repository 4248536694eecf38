"""Read a test file: TOML, validated, with errors that name the file, the line and the key.

The file speaks the swarm's vocabulary: every key at the top is an option of
``store-harness swarm``, by its flag's name (``spawn_rate`` for ``--spawn-rate``),
checked against that option's declaration (its type, its choices, whether it
repeats), so the file and the flags cannot drift. Beside them::

    participants = 200            # --users (participants is the file's word for it)
    faults = ["latency=20ms"]     # --fault, repeated
    [[stages]]                    # harness.plan.stages; a preset: harness.plan.presets
    [[thresholds]]                # or thresholds = ["notify.p99<50ms"]: harness.latency.thresholds
    [distribution]                # several machines: master = "HOST:PORT", workers = N

Credentials (``token_secret``, ``token``, ``header``) do not belong in a file that
is committed and copied around: they come from the environment or the flags.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import access
from harness.errors import HarnessUsageError
from harness.latency.thresholds import Threshold, threshold_from_entry
from harness.plan.durations import parse_duration
from harness.plan.locate import Locator, describe
from harness.plan.presets import PRESETS
from harness.plan.stages import StageSpec

#: The file's words for options whose flag reads oddly in a file.
ALIASES = {"participants": "users", "faults": "fault"}
#: The flags' names for what the file calls otherwise.
RENAMED = {"users": "participants", "fault": "faults", "slo": "thresholds"}
#: Options given as durations (a number of seconds or ``1h30m``) and passed on as text.
DURATION_OPTIONS = ("run_time",)
#: What the file itself holds beside the options.
TABLES = ("stages", "thresholds", "distribution")
STAGE_KEYS = {
    "name": "name",
    "start": "duration",
    "duration": "duration",
    "participants": "count",
    "spawn_rate": "rate",
    "ramp": "duration",
    "write_rate": "rate0",
}
DISTRIBUTION_KEYS = ("master", "workers", "wait")
DEFAULT_WORKERS_WAIT_S = 60.0
#: Credentials: their Flag names an environment variable, which is where they belong.
CREDENTIALS = {f.name: f.env for f in access.FLAGS if f.env}


@dataclass(frozen=True, slots=True)
class Distribution:
    """Several machines, one file: the master's address and how many worker machines."""

    host: str
    port: int
    workers: int
    wait_s: float = DEFAULT_WORKERS_WAIT_S


@dataclass
class TestFile:
    path: Path
    #: option dest -> value, for the options the file gives
    options: dict[str, Any] = field(default_factory=dict)
    stages: list[StageSpec] = field(default_factory=list)
    thresholds: list[Threshold] = field(default_factory=list)
    distribution: Distribution | None = None


class _Reader:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.locator = Locator(text)

    def where(self, *key: str | int) -> str:
        line = self.locator.line(key)
        return f"{self.path}:{line if line is not None else '?'}: {describe(key)}"

    def fail(self, key: tuple[str | int, ...], message: str) -> HarnessUsageError:
        return HarnessUsageError(f"{self.where(*key)}: {message}")


def load(path: str | Path, options: Mapping[str, argparse.Action]) -> TestFile:
    """Read and check ``path``; ``options`` are the swarm's, by dest (the file's vocabulary)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessUsageError(f"cannot read test file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise HarnessUsageError(f"test file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_of(str(exc))
        raise HarnessUsageError(f"{path}:{line or '?'}: not valid TOML: {exc.args[0]}") from None
    reader = _Reader(path, text)
    test = TestFile(path)
    for key, value in data.items():
        if key in TABLES:
            continue
        dest = ALIASES.get(key, key)
        if dest in CREDENTIALS:
            raise reader.fail(
                (key,),
                "a credential does not belong in a test file: "
                f"set {CREDENTIALS[dest]} or pass {access.flag(dest)}",
            )
        if key in RENAMED:
            raise reader.fail((key,), f"unknown key; the file calls it {RENAMED[key]}")
        action = options.get(dest)
        if action is None:
            raise reader.fail((key,), f"unknown key; {_suggest(key, options)}")
        test.options[dest] = _option_value(reader, key, value, action)
    test.stages = _stages(reader, data.get("stages", []))
    for key in ("participants", "run_time"):
        if test.stages and key in data:
            raise reader.fail(
                (key,), "does not apply beside [[stages]]: they say how many and how long"
            )
    test.thresholds = _thresholds(reader, data.get("thresholds", []))
    if "distribution" in data:
        test.distribution = _distribution(reader, data["distribution"])
    return test


def _line_of(message: str) -> int | None:
    marker = "at line "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(",", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


def _suggest(key: str, options: Mapping[str, argparse.Action]) -> str:
    import difflib

    words = [*TABLES, *ALIASES, *(d for d in options if d not in RENAMED)]
    close = difflib.get_close_matches(key, words, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        hint + "the keys are the swarm's options (store-harness swarm --help), " + ", ".join(TABLES)
    )


def _option_value(reader: _Reader, key: str, value: Any, action: argparse.Action) -> Any:
    dest = action.dest
    if action.nargs == 0:  # a switch
        if not isinstance(value, bool):
            raise reader.fail((key,), f"expected true or false, got {value!r}")
        return value
    if isinstance(action.default, list):  # repeated on the command line: a list here
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise reader.fail((key,), f"expected a list of strings, got {value!r}")
        return [_scalar(reader, (key, n), item, action) for n, item in enumerate(value)]
    if dest in DURATION_OPTIONS:
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            raise reader.fail((key,), f"expected a duration like 30s, 5m or 1h30m, got {value!r}")
        return f"{seconds:g}s" if seconds == int(seconds) else f"{seconds}s"
    return _scalar(reader, (key,), value, action)


def _scalar(
    reader: _Reader, key: tuple[str | int, ...], value: Any, action: argparse.Action
) -> Any:
    kind = action.type
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise reader.fail(key, f"expected a whole number, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise reader.fail(key, f"expected a number, got {value!r}")
        value = float(value)
    elif kind is None:
        if not isinstance(value, str):
            raise reader.fail(key, f"expected a string, got {value!r}")
    else:
        # A converter of its own (a port number...): it takes the flag's text.
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise reader.fail(key, f"expected a value like the flag's, got {value!r}")
        try:
            value = kind(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError, HarnessUsageError) as exc:
            raise reader.fail(key, str(exc) or f"{value!r} is not valid") from None
    if action.choices is not None and value not in action.choices:
        raise reader.fail(key, f"{value!r} is not one of {', '.join(map(str, action.choices))}")
    return value


def _checked(reader: _Reader, key: tuple[str | int, ...], value: Any, kind: str) -> Any:
    """A stage's (or a preset's) value of ``kind``, checked."""
    if kind == "duration":
        seconds = parse_duration(value)
        if seconds is None:
            raise reader.fail(key, f"expected a duration like 30s, 5m or 1h30m, got {value!r}")
        return seconds
    if kind == "name":
        if not isinstance(value, str) or not value or "@" in value:
            raise reader.fail(key, f"expected a name (text without '@'), got {value!r}")
        return value
    if kind in ("count", "count1"):
        least = 1 if kind == "count1" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise reader.fail(key, f"expected a whole number of at least {least}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise reader.fail(key, f"expected a number, got {value!r}")
    if (kind == "rate" and not value > 0) or (kind == "rate0" and not value >= 0):
        least = "positive" if kind == "rate" else "0 or more"
        raise reader.fail(key, f"expected a {least} number per second, got {value!r}")
    return float(value)


def _stages(reader: _Reader, entries: Any) -> list[StageSpec]:
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise reader.fail(("stages",), "expected a list of tables: [[stages]] ...")
    specs: list[StageSpec] = []
    for index, entry in enumerate(entries):

        def origin(key: str, index: int = index) -> str:
            return reader.where("stages", index, key)

        preset_name = entry.get("preset")
        if preset_name is not None:
            preset = PRESETS.get(preset_name) if isinstance(preset_name, str) else None
            if preset is None:
                raise reader.fail(
                    ("stages", index, "preset"),
                    f"unknown preset {preset_name!r}; use one of {', '.join(PRESETS)}",
                )
            kinds = {name: key.kind for name, key in preset.keys.items()}
            required = [name for name, key in preset.keys.items() if key.required]
        else:
            kinds, required = STAGE_KEYS, ["duration"]
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "preset":
                continue
            if key not in kinds:
                allowed = ", ".join(kinds)
                what = f"preset {preset_name!r}" if preset_name else "a stage"
                raise reader.fail(("stages", index, key), f"unknown key for {what}; use {allowed}")
            values[key] = _checked(reader, ("stages", index, key), value, kinds[key])
        for key in required:
            if key not in values:
                at = ("stages", index)
                raise reader.fail(at, f"needs {key}")
        if preset_name is not None:
            specs += PRESETS[preset_name].expand(values, origin)
            continue
        if "spawn_rate" in values and "ramp" in values:
            raise reader.fail(("stages", index, "ramp"), "give spawn_rate or ramp, not both")
        if values["duration"] <= 0:
            raise reader.fail(("stages", index, "duration"), "a stage needs a positive duration")
        specs.append(StageSpec(origin=origin, **values))
    return specs


def _thresholds(reader: _Reader, entries: Any) -> list[Threshold]:
    if not isinstance(entries, list):
        raise reader.fail(("thresholds",), 'expected a list: thresholds = ["notify.p99<50ms"]')
    out = []
    for index, entry in enumerate(entries):
        try:
            out.append(threshold_from_entry(entry))
        except HarnessUsageError as exc:
            raise reader.fail(("thresholds", index), str(exc)) from None
    return out


def _distribution(reader: _Reader, table: Any) -> Distribution:
    if not isinstance(table, dict):
        raise reader.fail(("distribution",), "expected a table: [distribution]")
    for key in table:
        if key not in DISTRIBUTION_KEYS:
            raise reader.fail(
                ("distribution", key), f"unknown key; use {', '.join(DISTRIBUTION_KEYS)}"
            )
    master = table.get("master")
    host, _, port = master.rpartition(":") if isinstance(master, str) else ("", "", "")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise reader.fail(("distribution", "master"), f'expected "HOST:PORT", got {master!r}')
    workers = _checked(reader, ("distribution", "workers"), table.get("workers"), "count1")
    wait = table.get("wait", DEFAULT_WORKERS_WAIT_S)
    wait_s = _checked(reader, ("distribution", "wait"), wait, "duration")
    return Distribution(host.strip("[]"), int(port), workers, wait_s)
