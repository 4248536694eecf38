"""Server epochs: which server lifetime a participant joins, shared through a small file.

See :mod:`harness.faults.restart` for why this keeps the checker sound. This
module is imported by every swarm process, so it needs nothing but the
standard library and orjson.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from harness.run.directory import write_atomically


def epoch_session(session: str, epoch: int) -> str:
    """The session name participants of ``epoch`` join (the base name before any restart)."""
    return session if epoch == 0 else f"{session}.r{epoch}"


class EpochFile:
    """The current epoch, shared through a small file by every process of a swarm."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, epoch: int, *, restarting: bool) -> None:
        write_atomically(self.path, orjson.dumps({"epoch": epoch, "restarting": restarting}))

    def read(self) -> tuple[int, bool]:
        """(epoch, restarting); a missing file is epoch 0, not restarting."""
        try:
            data = orjson.loads(self.path.read_bytes())
            return int(data["epoch"]), bool(data["restarting"])
        except FileNotFoundError:
            return 0, False
        except (OSError, ValueError, KeyError, TypeError):
            # Unreadable: say "restarting", so nobody joins a session it cannot name.
            return 0, True
