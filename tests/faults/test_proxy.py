"""The fault proxy, connection by connection, in front of the reference server.

Times are only ever asserted as lower bounds the proxy must impose (a delay it
adds, a rate it must not exceed), never as how fast anything went.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from harness.client.sync import StoreClient
from harness.errors import ConnectionLost, HarnessError
from harness.faults.embedded import ProxyProcess, ProxyThread
from harness.faults.proxy import FaultProxy
from harness.faults.spec import parse_faults


def joined(url: str, name: str = "p1", **options: object) -> StoreClient:
    client = StoreClient(url, request_timeout=10, **options).open()  # type: ignore[arg-type]
    client.join("faults", name, name)
    return client


def wait_for(condition, attempts: int = 200, pause: float = 0.05) -> bool:
    """Poll a condition a bounded number of times; whether it came true."""
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(pause)
    return condition()


def test_latency_adds_at_least_the_configured_delay_each_way(server_url):
    plan = parse_faults(["latency=40ms,jitter=10ms"])
    with ProxyThread(server_url, plan) as proxy, joined(proxy.url) as client:
        for _ in range(5):
            started = time.perf_counter()
            client.set("k", "v")
            # The request and its reply each crossed the proxy once.
            assert time.perf_counter() - started >= 2 * 0.040
        assert client.get("k") == "v"  # jitter delays bytes but never reorders them


def test_one_direction_only(server_url):
    plan = parse_faults(["latency-down=60ms"])
    with ProxyThread(server_url, plan) as proxy, joined(proxy.url) as client:
        started = time.perf_counter()
        client.get("k")
        assert time.perf_counter() - started >= 0.060


def test_bandwidth_cap_bounds_throughput_from_above(run):
    rate, total = 32 * 1024, 48 * 1024
    received: list[float] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count = 0
        while count < total and (data := await reader.read(65536)):
            count += len(data)
        received.append(time.perf_counter())
        writer.close()

    async def scenario() -> float:
        upstream = await asyncio.start_server(sink, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        plan = parse_faults([f"bandwidth={rate}B"])
        async with upstream, FaultProxy(f"ws://127.0.0.1:{port}/", plan) as proxy:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            started = time.perf_counter()
            writer.write(b"x" * total)
            await writer.drain()
            async with asyncio.timeout(30):
                while not received:
                    await asyncio.sleep(0.02)
            writer.close()
            return received[0] - started

    elapsed = run(scenario())
    step = rate // 20  # the proxy's largest single write at this rate
    assert elapsed >= (total - step) / rate  # i.e. throughput <= rate, give or take one write


def test_a_dropped_connection_is_seen_as_connection_lost(server_url):
    plan = parse_faults(["drop=0.9,seed=1"])
    with ProxyThread(server_url, plan) as proxy:
        client = joined(proxy.url)
        lost = None
        for _ in range(200):  # a cut is certain long before this ends (mean lifetime 0.43 s)
            try:
                client.get("k")
            except ConnectionLost as exc:
                lost = exc
                break
            time.sleep(0.05)
        client.close()
        assert lost is not None
        assert proxy.stats.cut["drop"] >= 1


def test_a_connection_lives_its_lifetime_then_is_cut(server_url):
    with ProxyThread(server_url, parse_faults(["lifetime=300ms"])) as proxy:
        client = joined(proxy.url)
        assert wait_for(lambda: client.closed)
        with pytest.raises(ConnectionLost):
            client.get("k")
        assert proxy.stats.cut == {"lifetime": 1}


def test_partition_cuts_refuses_then_heals(server_url):
    plan = parse_faults(["partition=100%@0s+2s"])
    with ProxyThread(server_url, plan) as proxy:
        before = StoreClient(proxy.url)
        opened = None
        assert wait_for(lambda: proxy.stats.partitions_run == 1)
        refused = 0
        for _ in range(100):  # until the partition heals and a connection gets through
            try:
                opened = joined(proxy.url)
                break
            except ConnectionLost:
                refused += 1
                time.sleep(0.05)
        assert refused >= 1 and proxy.stats.refused == refused
        assert opened is not None, "the partition never healed"
        opened.set("k", "after")
        assert opened.get("k") == "after"
        opened.close()
        before.close()


def test_a_partition_cuts_the_open_connections_it_takes(server_url):
    plan = parse_faults(["partition=100%@500ms+1s"])
    with ProxyThread(server_url, plan) as proxy:
        clients = [joined(proxy.url, f"p{n}") for n in range(4)]
        assert wait_for(lambda: all(c.closed for c in clients))
        assert proxy.stats.cut["partition"] == 4
        for client in clients:
            with pytest.raises(ConnectionLost):
                client.get("k")


def test_a_held_schedule_counts_partition_times_from_begin_schedule(server_url):
    plan = parse_faults(["partition=100%@0s+1s"])
    with ProxyThread(server_url, plan, hold_schedule=True) as proxy:
        with joined(proxy.url) as client:
            time.sleep(0.3)  # a partition at 0s would have cut it by now
            client.set("k", "before the clock")
            assert not client.closed and proxy.stats.partitions_run == 0
            proxy.begin_schedule()
            proxy.begin_schedule()  # once: a second call does not run the partitions twice
            assert wait_for(lambda: client.closed)
        assert proxy.stats.partitions_run == 1 and proxy.stats.cut == {"partition": 1}


def test_a_stalling_partition_holds_bytes_then_delivers_them(server_url):
    plan = parse_faults(["partition=100%@300ms+1s:stall"])
    with ProxyThread(server_url, plan) as proxy, joined(proxy.url) as client:
        assert wait_for(lambda: proxy.stats.stalled == 1)
        client.set("k", "held")  # sent into the stall; answered once it heals
        assert client.get("k") == "held" and not client.closed
        assert proxy.stats.cut == {}


def test_an_unreachable_upstream_closes_the_client():
    with ProxyThread("ws://127.0.0.1:9/") as proxy, pytest.raises(ConnectionLost):
        joined(proxy.url)
    assert proxy.stats.upstream_failed == 1


def test_the_proxy_command_prints_its_url_and_forwards(server_url):
    with ProxyProcess(server_url, ["latency=20ms"]) as proxy:
        assert proxy.url.startswith("ws://127.0.0.1:")
        with joined(proxy.url) as client:
            started = time.perf_counter()
            client.set("k", "through a child process")
            assert time.perf_counter() - started >= 0.040
    assert proxy.process is not None and proxy.process.returncode == 0


def test_the_proxy_command_rejects_a_bad_fault_with_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "harness", "proxy", "--upstream", "ws://127.0.0.1:9/",
         "--jitter", "lots"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--fault 'jitter=lots'" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_upstream_is_a_usage_error():
    with pytest.raises(HarnessError, match="not a URL like ws://HOST:PORT/"):
        FaultProxy("127.0.0.1:2379")
    with pytest.raises(HarnessError, match="needs a port"):
        FaultProxy("etcd://127.0.0.1/prefix")


def test_any_tcp_store_url_with_a_port_is_proxied():
    proxy = FaultProxy("etcd://127.0.0.1:2379/prefix")
    assert (proxy.scheme, proxy.upstream_port, proxy.path) == ("etcd", 2379, "/prefix")
