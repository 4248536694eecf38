"""Named swarm scenarios: what simulated participants of a meeting do.

A scenario only sets defaults; every knob is also a locust custom argument
(``--key-space``, ``--weight-set``...) that overrides it, so the web UI shows
and edits them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.errors import HarnessUsageError


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    #: Keys participants touch; ``key_names`` wins over generated ``key-N`` names.
    key_space: int = 20
    key_names: tuple[str, ...] = ()
    value_size: int = 64
    observers: int = 3
    #: Fraction of participants that write; the others only read and observe.
    writer_fraction: float = 1.0
    weight_set: int = 5
    weight_get: int = 3
    weight_delete: int = 1
    weight_observe: int = 1
    think_min: float = 0.05
    think_max: float = 0.2

    def all_keys(self) -> list[str]:
        return (
            list(self.key_names) if self.key_names else [f"key-{n}" for n in range(self.key_space)]
        )

    def with_overrides(self, **overrides: object) -> Scenario:
        given = {name: value for name, value in overrides.items() if value is not None}
        if "key_space" in given:
            given["key_names"] = ()
        scenario = replace(self, **given)  # type: ignore[arg-type]
        scenario.validate()
        return scenario

    def validate(self) -> None:
        problems = []
        if self.key_space < 1 and not self.key_names:
            problems.append("--key-space must be at least 1")
        if self.value_size < 0:
            problems.append("--value-size must not be negative")
        if self.observers < 0:
            problems.append("--observers must not be negative")
        if not 0 <= self.writer_fraction <= 1:
            problems.append("--writer-fraction must be between 0 and 1")
        weights = (self.weight_set, self.weight_get, self.weight_delete, self.weight_observe)
        if min(weights) < 0 or sum(weights) == 0:
            problems.append("task weights must be non-negative and not all zero")
        if not 0 <= self.think_min <= self.think_max:
            problems.append("--think-time must be MIN,MAX with 0 <= MIN <= MAX")
        if problems:
            raise HarnessUsageError("; ".join(problems))


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "mixed",
            "every participant sets, gets, deletes and observes keys of a shared key space",
        ),
        Scenario(
            "moderation",
            "a few moderators flip moderation flags; everyone observes every flag",
            key_names=("BLOCK_CHAT", "BLOCK_SCREENSHARE", "PINNED_MESSAGE", "SPOTLIGHT"),
            value_size=16,
            observers=4,
            writer_fraction=0.05,
            weight_set=4,
            weight_get=1,
            weight_delete=1,
            weight_observe=0,
            think_min=0.2,
            think_max=1.0,
        ),
        Scenario(
            "notes",
            "many participants write the same few shared-notes keys: heavy contention",
            key_names=("notes", "agenda", "poll"),
            value_size=512,
            observers=3,
            weight_set=8,
            weight_get=2,
            weight_delete=0,
            weight_observe=0,
        ),
        Scenario(
            "key-limit",
            "participants create keys beyond the 100-key limit, so the limit is hit and held",
            key_space=150,
            value_size=32,
            observers=2,
            weight_set=10,
            weight_get=2,
            weight_delete=1,
            weight_observe=0,
        ),
    )
}

DEFAULT_SCENARIO = "mixed"


def scenario_named(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise HarnessUsageError(f"unknown scenario {name!r}; choose one of: {known}") from None
