"""Exit codes, for every subcommand, and the one place that maps an exception to one.

- 0: passed;
- 1: the server failed: an anomaly, a protocol violation, a failed conformance
  case, a breached threshold;
- 2: the harness could not run: bad options, an unreachable server;
- 130: interrupted (Ctrl-C), as shells count it.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_RUN = 0, 1, 2
EXIT_INTERRUPTED = 130


def exit_code_for(exc: BaseException) -> int:
    """The exit code a subcommand ends with when ``exc`` ends it."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return EXIT_OK  # the reader went away (`| head`): nothing failed
    # A HarnessError (usage or not) and a bug alike: the harness could not run.
    return EXIT_CANNOT_RUN


def exit_code(failed: bool) -> int:
    """1 when the server failed what was checked, else 0."""
    return EXIT_FAILED if failed else EXIT_OK
