"""One headless Chromium for many pages, driven over the DevTools protocol.

``browser.chromium`` starts a browser per page; a test that looks at twenty
pages would wait a minute. :class:`Browser` starts one (same binary, same
flags) and opens each page in turn, recording every request the page makes, so
a test can assert that a page fetched nothing but itself.

    with Browser(tmp_path / "profile") as browser:
        visit = browser.open(page, "document.title")
        assert visit.fetched == [page.resolve().as_uri()]
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from browser import CHROMIUM, FLAGS
from websockets.sync.client import ClientConnection, connect

#: Every wait is bounded: a page that never loads fails the test, it never hangs it.
TIMEOUT_S = 30


@dataclass
class Visit:
    value: Any
    #: URLs of every request the page made, its own included, in order.
    fetched: list[str] = field(default_factory=list)
    #: Uncaught script exceptions and console errors.
    errors: list[str] = field(default_factory=list)


class Browser:
    def __init__(self, profile: Path) -> None:
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ids = itertools.count(1)
        self.stack = contextlib.ExitStack()
        self.events: list[dict[str, Any]] = []
        try:
            self.socket = self.stack.enter_context(
                connect(self._endpoint(), max_size=None, open_timeout=TIMEOUT_S)
            )
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
            self.session = attached["sessionId"]
            for domain in ("Page", "Network", "Runtime"):
                self.call(f"{domain}.enable", session=self.session)
        except BaseException:
            self.close()
            raise

    def _endpoint(self) -> str:
        """The browser's DevTools URL, read from its stderr by a thread that keeps reading
        (a full pipe would stall Chromium) and hands the URL over within TIMEOUT_S."""
        found: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match:
                    found.put(match.group(1))

        threading.Thread(target=drain, daemon=True).start()
        try:
            return found.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError("Chromium did not start its DevTools endpoint") from None

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.socket.send(orjson.dumps(message).decode())
        return self._until(lambda m: m.get("id") == ident)

    def _until(self, done: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        socket: ClientConnection = self.socket
        while True:
            message = orjson.loads(socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if done(message):
                if "error" in message:
                    raise RuntimeError(f"DevTools: {message['error']}")
                return message.get("result", message)
            if "method" in message:
                self.events.append(message)

    def open(self, page: Path | str, expression: str, *, settle_s: float = 0.2) -> Visit:
        """Load ``page``, wait for its load event, evaluate ``expression`` (JSON-able)."""
        url = page if isinstance(page, str) and "://" in page else Path(page).resolve().as_uri()
        self.events = []
        self.call("Page.navigate", session=self.session, url=url)
        self._until(lambda m: m.get("method") == "Page.loadEventFired")
        time.sleep(settle_s)  # timers and late fetches the page might start after load
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"the expression failed: {result['exceptionDetails']}")
        visit = Visit(result["result"].get("value"))
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Network.requestWillBeSent":
                visit.fetched.append(params["request"]["url"])
            elif event["method"] == "Runtime.exceptionThrown":
                visit.errors.append(str(params["exceptionDetails"].get("exception", params)))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                visit.errors.append(str(params.get("args")))
        return visit

    def screenshot(self, path: Path, width: int = 1280, height: int = 900) -> Path:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", session=self.session, format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.stack.close()
        self.process.kill()
        self.process.wait(timeout=TIMEOUT_S)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
