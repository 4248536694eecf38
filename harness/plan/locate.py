"""Where a key of a TOML file is written: tomllib gives values, never their lines.

Table headers (``[distribution]``, ``[[stages]]``) and ``key =`` lines are enough
for the layouts a test file takes; a key inside an inline table falls back to
the first line after its parent that names it.
"""

from __future__ import annotations

import re

_ARRAY_TABLE = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*([^\]]+?)\s*\]")
_KEY = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*=""")

Path = tuple[str | int, ...]


def _dotted(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


class Locator:
    """Line numbers of the keys of one TOML text (1-based)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.found: dict[Path, int] = {}
        table: Path = ()
        counts: dict[tuple[str, ...], int] = {}
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if match := _ARRAY_TABLE.match(line):
                name = _dotted(match[1])
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, index)
                self.found.setdefault(table, number)
            elif match := _TABLE.match(line):
                table = _dotted(match[1])
                self.found.setdefault(table, number)
            elif match := _KEY.match(line):
                key = match[1] or match[2] or match[3]
                self.found.setdefault((*table, key), number)

    def line(self, path: Path) -> int | None:
        """The line ``path`` (keys and list indexes from the top) is written on."""
        if path in self.found:
            return self.found[path]
        for cut in range(len(path) - 1, 0, -1):
            parent = self.found.get(path[:cut])
            if parent is None:
                continue
            # An inline table or array: the index-th "{" after the parent, then the key.
            start = parent - 1
            rest = path[cut:]
            if isinstance(rest[0], int):
                seen = -1
                for n in range(start, len(self.lines)):
                    seen += self.lines[n].count("{")
                    if seen >= rest[0]:
                        start = n
                        break
            key = next((part for part in reversed(rest) if isinstance(part, str)), None)
            if key is None:
                return start + 1
            pattern = re.compile(rf"""(^|[\s{{,])["']?{re.escape(key)}["']?\s*=""")
            for n in range(start, len(self.lines)):
                if pattern.search(self.lines[n]):
                    return n + 1
            return parent
        return None


def describe(path: Path) -> str:
    """``("stages", 1, "duration")`` -> ``stages[2].duration`` (stages counted from 1)."""
    out = ""
    for part in path:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
