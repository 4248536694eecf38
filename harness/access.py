"""Access and handshake options, declared once for every command that connects.

``swarm`` (and its locust custom arguments), ``sweep``, ``conformance`` and
``fuzz`` all take the same flags from :data:`FLAGS`:

* a join token (R2.4), from one of four sources: ``--token-secret`` mints an
  HS256 token per participant (session and participant id); ``--token`` sends
  one as given; ``--token-file`` holds one token a line (blank lines and ``#``
  comments skipped), and the n-th participant to join takes line n mod count;
  ``--token-cmd`` runs a command once per participant, with the session and
  participant id as its last two arguments and in ``STORE_HARNESS_SESSION`` /
  ``STORE_HARNESS_PARTICIPANT``, and sends its stdout, stripped;
* the opening handshake: ``--header 'Name: value'`` (repeatable) and
  ``--subprotocol``;
* TLS for ``wss://``: ``--ca-file`` or ``--insecure``.

The secret, the token and header values are credentials: they are never
written to a run directory or a report, and the swarm hands them to its locust
process in the environment (:data:`SECRET_ENV`, :data:`TOKEN_ENV`,
:data:`HEADERS_ENV`), never on its command line. The same variables work for
``store-harness`` itself, so nothing secret needs to be in a process listing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessUsageError
from harness.protocol.auth import SECRET_ENV, check_secret, mint_token

TOKEN_ENV = "STORE_HARNESS_TOKEN"
#: Handshake headers, one ``Name: value`` a line.
HEADERS_ENV = "STORE_HARNESS_HEADERS"
SESSION_ENV = "STORE_HARNESS_SESSION"
PARTICIPANT_ENV = "STORE_HARNESS_PARTICIPANT"
TOKEN_CMD_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Flag:
    """One access option: its flag comes from ``name``; ``env`` is where a secret travels."""

    name: str
    help: str
    metavar: str | None = None
    append: bool = False
    switch: bool = False
    env: str | None = None


FLAGS = (
    Flag("token_secret", "the server's HS256 secret: mint a join token per participant "
         f"(session and participant id); prefer the {SECRET_ENV} environment variable, "
         "which process listings do not show", "SECRET", env=SECRET_ENV),
    Flag("token", f"one join token for every participant, as given (or {TOKEN_ENV})",
         "TOKEN", env=TOKEN_ENV),
    Flag("token_file", "join tokens, one a line: the n-th participant to join takes "
         "line n mod count", "FILE"),
    Flag("token_cmd", "a command run once per participant, with the session and participant "
         f"id as arguments (and in {SESSION_ENV}, {PARTICIPANT_ENV}); its stdout is the token",
         "CMD"),
    Flag("header", f"an opening-handshake header, repeatable (or {HEADERS_ENV}, one a line)",
         "'NAME: VALUE'", append=True, env=HEADERS_ENV),
    Flag("subprotocol", "the WebSocket subprotocol to offer", "NAME"),
    Flag("ca_file", "verify a wss:// server against this CA bundle", "FILE"),
    Flag("insecure", "do not verify a wss:// server's certificate (test servers only)",
         switch=True),
)  # fmt: skip

#: The token sources: at most one may be given.
TOKEN_SOURCES = ("token_secret", "token", "token_file", "token_cmd")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_options(parser: Any, *, locust: bool = False) -> None:
    """The access flags on ``parser``: an argparse parser, or locust's (``locust=True``)."""
    target = parser if locust else parser.add_argument_group("access and handshake")
    for spec in FLAGS:
        kwargs: dict[str, Any] = {"help": spec.help}
        if spec.switch:
            kwargs.update(action="store_true", default=False)
        else:
            kwargs.update(metavar=spec.metavar, default=[] if spec.append else None)
            if spec.append:
                kwargs["action"] = "append"
        if locust:
            # Credentials must not reach the web UI's forms (and the browser with them).
            kwargs["include_in_web_ui"] = False
        target.add_argument(flag(spec.name), **kwargs)


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or name != name.strip() or " " in name:
        # Not quoted: a header's text may be a credential.
        raise HarnessUsageError("--header needs the form 'Name: value' (a name, a colon, a value)")
    return name, value.strip()


@dataclass(frozen=True, slots=True)
class Access:
    """What the access flags say; :meth:`token_for` gives each join its token."""

    token_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    token_file: str | None = None
    token_cmd: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    subprotocol: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    #: (session, participant id) -> token, so --token-cmd runs once per participant;
    #: "file" -> the --token-file's tokens.
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    #: participant id -> its place among those that joined, for --token-file.
    _numbers: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_args(cls, args: Any, environ: Mapping[str, str] = os.environ) -> Access:
        """The options ``args`` (argparse or locust) gave, secrets also from ``environ``."""
        values = {spec.name: getattr(args, spec.name, None) for spec in FLAGS}
        secret = values["token_secret"] or environ.get(SECRET_ENV) or None
        token = values["token"] or environ.get(TOKEN_ENV) or None
        lines = list(values["header"] or [])
        lines += [line for line in environ.get(HEADERS_ENV, "").splitlines() if line.strip()]
        return cls(
            token_secret=secret,
            token=token,
            token_file=values["token_file"] or None,
            token_cmd=values["token_cmd"] or None,
            headers=tuple(parse_header(line) for line in lines),
            subprotocol=values["subprotocol"] or None,
            ca_file=values["ca_file"] or None,
            insecure=bool(values["insecure"]),
        )

    def validate(self) -> Access:
        """Usage errors (exit 2) before anything connects; returns self."""
        given = [flag(name) for name in TOKEN_SOURCES if getattr(self, name) is not None]
        if len(given) == 2:
            raise HarnessUsageError(f"pass {given[0]} or {given[1]}, not both")
        if len(given) > 2:
            raise HarnessUsageError(f"pass one of {', '.join(given)}, not several")
        if self.token_secret is not None:
            check_secret(self.token_secret)
        if self.token_file is not None:
            self._tokens()
        if self.token_cmd is not None and not shlex.split(self.token_cmd):
            raise HarnessUsageError("--token-cmd is empty")
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise HarnessUsageError(f"--ca-file {self.ca_file!r}: no such file")
        if self.ca_file is not None and self.insecure:
            raise HarnessUsageError("pass --ca-file or --insecure, not both")
        return self

    @property
    def has_token(self) -> bool:
        return any(getattr(self, name) is not None for name in TOKEN_SOURCES)

    def token_for(self, session: str, participant_id: str) -> str | None:
        """The token a join of ``participant_id`` to ``session`` carries (None: no token)."""
        if self.token_secret is not None:
            return mint_token(self.token_secret, session, participant_id)
        if self.token_file is not None:
            tokens = self._tokens()
            number = self._numbers.setdefault(participant_id, len(self._numbers))
            return tokens[number % len(tokens)]
        if self.token_cmd is not None:
            key = (session, participant_id)
            if key not in self._cache:
                self._cache[key] = self._run_token_cmd(session, participant_id)
            return self._cache[key]
        return self.token

    def _tokens(self) -> list[str]:
        tokens = self._cache.get("file")
        if tokens is None:
            assert self.token_file is not None
            try:
                text = Path(self.token_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise HarnessUsageError(f"--token-file {self.token_file!r}: {reason}") from None
            tokens = [
                line.strip()
                for line in text.splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
            if not tokens:
                raise HarnessUsageError(f"--token-file {self.token_file!r} holds no token")
            self._cache["file"] = tokens
        return tokens

    def _run_token_cmd(self, session: str, participant_id: str) -> str:
        assert self.token_cmd is not None
        command = [*shlex.split(self.token_cmd), session, participant_id]
        env = dict(os.environ, **{SESSION_ENV: session, PARTICIPANT_ENV: participant_id})
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=TOKEN_CMD_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HarnessUsageError(f"--token-cmd could not run: {exc}") from None
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            # Its stderr is not quoted: a token issuer's errors may hold credentials.
            problem = f"exited with {done.returncode}" if done.returncode else "printed no token"
            raise HarnessUsageError(f"--token-cmd {problem} for participant {participant_id!r}")
        return token

    def client_options(self) -> dict[str, Any]:
        """The handshake and TLS settings, as :class:`~harness.client.core.ClientOptions`."""
        return {
            "headers": self.headers,
            "subprotocol": self.subprotocol,
            "ca_file": self.ca_file,
            "insecure": self.insecure,
        }

    def command_args(self) -> list[str]:
        """The flags for another process's command line: the credentials excluded."""
        args: list[str] = []
        for name in ("token_file", "token_cmd", "subprotocol", "ca_file"):
            value = getattr(self, name)
            if value is not None:
                args += [flag(name), value]
        return args + (["--insecure"] if self.insecure else [])

    def environment(self) -> dict[str, str]:
        """The credentials, for another process's environment."""
        env = {SECRET_ENV: self.token_secret or "", TOKEN_ENV: self.token or ""}
        env[HEADERS_ENV] = "\n".join(f"{name}: {value}" for name, value in self.headers)
        return env

    def hidden(self) -> Iterator[str]:
        """Every credential given, to keep out of anything written."""
        yield from (s for s in (self.token_secret, self.token) if s)
        yield from (value for _, value in self.headers if value)

    def to_json(self) -> dict[str, Any]:
        """What a report may say: whether each option was used, never a credential."""
        return {
            "token": next((flag(n) for n in TOKEN_SOURCES if getattr(self, n) is not None), None),
            "headers": [name for name, _ in self.headers],
            "subprotocol": self.subprotocol,
            "ca_file": self.ca_file,
            "insecure": self.insecure,
        }


def from_args(args: argparse.Namespace) -> Access:
    """The validated access options of a command's parsed ``args``."""
    return Access.from_args(args).validate()


__all__ = ["FLAGS", "HEADERS_ENV", "TOKEN_ENV", "Access", "add_options", "from_args"]
