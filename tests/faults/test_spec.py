"""The --fault grammar: what each item means, and errors that name the bad item."""

from __future__ import annotations

import pytest

from harness.errors import HarnessUsageError
from harness.faults.spec import DROP, STALL, FaultPlan, Partition, parse_faults


def test_the_example_from_the_help_parses_into_every_fault():
    plan = parse_faults(
        ["latency=20ms,jitter=5ms,bandwidth=64KiB,drop=0.05", "partition=30%@5s+3s", "seed=7"]
    )
    assert plan.latency_up_s == plan.latency_down_s == pytest.approx(0.020)
    assert plan.jitter_s == pytest.approx(0.005)
    assert plan.bandwidth == 64 * 1024
    assert plan.drop == pytest.approx(0.05)
    assert plan.partitions == (Partition(0.3, 5.0, 3.0, DROP),)
    assert plan.seed == 7 and plan.active
    assert "partition 30% at 5s for 3s (drop)" in plan.describe()
    assert plan.to_json()["specs"] == ["latency=20ms,jitter=5ms,bandwidth=64KiB,drop=0.05",
                                       "partition=30%@5s+3s", "seed=7"]  # fmt: skip


def test_directions_ranges_units_and_modes():
    plan = parse_faults(
        [
            "latency=10ms,latency-down=1.5s",
            "bandwidth=1MB/s,lifetime=2s..10s,drop=5%",
            "partition=0.5@1m+500ms:stall,partition=10%@2s+1s",
        ]
    )
    assert (plan.latency_up_s, plan.latency_down_s) == pytest.approx((0.010, 1.5))
    assert plan.bandwidth == 1_000_000
    assert plan.lifetime_s == (2.0, 10.0)
    assert plan.drop == pytest.approx(0.05)
    # Sorted by start time.
    assert plan.partitions == (Partition(0.1, 2.0, 1.0, DROP), Partition(0.5, 60.0, 0.5, STALL))
    assert parse_faults(["lifetime=3s"]).lifetime_s == (3.0, 3.0)


def test_no_spec_is_no_fault():
    assert not parse_faults([]).active
    assert not parse_faults(["seed=3"]).active
    assert FaultPlan().describe() == "no faults"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("latency=fast", "'fast' is not a duration"),
        ("latency=20", "'20' is not a duration"),
        ("latncy=20ms", "unknown fault 'latncy'"),
        ("latency", "expected NAME=VALUE"),
        ("latency=1ms,latency=2ms", "latency is given twice"),
        ("bandwidth=lots", "is not a rate"),
        ("bandwidth=0", "at least 1 byte/s"),
        ("drop=1", "below 1"),
        ("drop=150%", "between 0 and 1"),
        ("drop=often", "is not a number"),
        ("lifetime=5s..1s", "MIN..MAX"),
        ("partition=30%@5s", "FRACTION@START+DURATION"),
        ("partition=30%@5s+0s", "duration must be positive"),
        ("partition=30%@5s+3s:sulk", "'sulk' is not drop or stall"),
        ("partition=2@5s+3s", "between 0 and 1"),
        ("seed=x", "integer"),
    ],
)
def test_errors_name_the_item_and_what_is_wrong(spec, message):
    with pytest.raises(HarnessUsageError) as caught:
        parse_faults([spec])
    assert message in str(caught.value)
    assert str(caught.value).startswith("--fault '")
