"""Blocking clients under gevent, as locust runs them: which one to build the swarm on.

    python benchmarks/bench_sync_clients.py [--users 50,500] [--seconds 3]

Each variant runs in its own gevent-patched child process: N greenlets, each
with its own connection to one reference server (another child process),
doing set round trips for a fixed time. Variants:

- harness:     harness.client.sync.StoreClient (sans-I/O websockets; under gevent, read in the hub)
- ws-sync:     websockets.sync.client, raw frames (its own receive thread per connection)
- ws-client:   websocket-client, raw frames (what a locustfile "written the obvious way" uses)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from harness.server.embedded import ServerProcess

VARIANT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys, time, gevent
    variant, url, users, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    counts = [0] * users
    deadline = time.monotonic() + seconds

    def harness_user(i):
        from harness.client.sync import connect
        with connect(url) as c:
            c.join("bench", f"u{i}")
            while time.monotonic() < deadline:
                c.set(f"k{i % 100}", "v")
                counts[i] += 1

    def raw_user(i, ws_connect, recv):
        ws = ws_connect(url)
        ws.send(json.dumps({"type": "join", "id": 0, "session": "bench",
                            "participant": {"id": f"u{i}", "name": ""}}))
        recv(ws)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            ws.send(json.dumps({"type": "set", "id": n, "key": f"k{i % 100}", "value": "v"}))
            reply = json.loads(recv(ws))
            assert reply["id"] == n, reply
            counts[i] += 1
        ws.close()

    def ws_sync_user(i):
        from websockets.sync.client import connect
        raw_user(i, lambda u: connect(u, compression=None, max_size=2**16), lambda ws: ws.recv())

    def ws_client_user(i):
        import websocket
        raw_user(i, lambda u: websocket.create_connection(u), lambda ws: ws.recv())

    user = {"harness": harness_user, "ws-sync": ws_sync_user, "ws-client": ws_client_user}[variant]
    started = time.monotonic()
    jobs = [gevent.spawn(user, i) for i in range(users)]
    gevent.joinall(jobs, timeout=seconds + 30)
    failed = [j.exception for j in jobs if j.exception]
    print(json.dumps({"requests": sum(counts), "seconds": time.monotonic() - started,
                      "failed": len(failed), "error": repr(failed[0]) if failed else None}))
    """
)


def measure(variant: str, url: str, users: int, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", VARIANT, variant, url, str(users), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="50,500")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{'variant':<10} {'users':>6} {'req/s':>9} {'vs ws-client':>13}")
    with ServerProcess() as server:
        for users in [int(u) for u in args.users.split(",")]:
            rates = {}
            for variant in ("ws-client", "ws-sync", "harness"):
                result = measure(variant, server.url, users, args.seconds)
                rates[variant] = result["requests"] / args.seconds
                ratio = rates[variant] / rates["ws-client"]
                note = (
                    f"  ({result['failed']} users failed: {result['error']})"
                    if result["failed"]
                    else ""
                )
                print(f"{variant:<10} {users:>6} {rates[variant]:>9.0f} {ratio:>12.2f}x{note}")


if __name__ == "__main__":
    main()
