"""Runs as code: a TOML test file, resolved into a plan of stages, thresholds and processes.

    store-harness run test.toml            # the test the file describes
    store-harness run --dry-run test.toml  # the resolved plan: stages with times and rates

:mod:`~harness.plan.loader` reads and validates the file (every error names the
file, the line and the key), :mod:`~harness.plan.stages` resolves stages into
start and end times with participant targets and write rates,
:mod:`~harness.plan.presets` expands the meeting patterns (``join-storm``,
``trickle-in``, ``moderator-bursts``, ``leave-at-end``), and
:mod:`~harness.plan.rates` turns a ramping write rate into intended send times.

This package imports nothing on import, so the latency layer can use
:mod:`~harness.plan.durations` without pulling in the command line.
"""
