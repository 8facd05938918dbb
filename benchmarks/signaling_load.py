"""Load benchmark for the signaling server, on loopback only.

The server runs in its own process (``python -m signaling``); the load comes
from one or more *worker* processes (this same file, run with ``--worker``)
that hold raw :mod:`websockets.asyncio.client` connections. Every packet goes
to 127.0.0.1 and nowhere else.

What it measures, in this order:

1. **connections held**: ``--peers`` websockets, two per room, all joined;
   confirmed with the server's own ``/metrics``.
2. **memory per connection**: the server's ``VmRSS`` (``/proc/PID/status``)
   just before the connections open and once they are all up, the delta
   divided by the count.
3. **relayed messages per second**: every room pair signals concurrently in a
   closed loop (each delivery triggers the next ``signal`` back, ``--window``
   messages in flight per direction) for ``--seconds``.
4. **relay latency** p50/p99: the sender puts ``time.monotonic_ns()`` in the
   ``data`` of each ``signal``; the receiving peer (in the load process)
   subtracts it on arrival. Reported under the saturating load of step 3 and
   at a paced, open-loop offered load (``--latency-rate``) that shows the
   latency of a server that is not queueing.

On a small machine the server and the load share the cores, so the report
gives the CPU each of them used (per relayed message too), the CPU taken by
everything else on the machine, and a warning when a neighbour took more than
10%: such a run understates the server.

With ``--servers N`` (N > 1) the tool also starts a ``redis-server`` on a free
loopback port and N server processes with ``--redis``; the two peers of every
room connect to *different* processes (room k: processes k mod N and k+1 mod
N), so every relayed message crosses Redis. Memory per connection is then the
growth of all the servers' RSS together; Redis's own memory and CPU are
reported beside them.

::

    .venv/bin/python benchmarks/signaling_load.py                       # 5,000 peers, 10 s
    .venv/bin/python benchmarks/signaling_load.py --peers 500 --seconds 3 --json
    .venv/bin/python benchmarks/signaling_load.py --peers 20000 --servers 4   # 1 Redis + 4 servers
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets.version
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HOST = "127.0.0.1"  # loopback only: this benchmark never sends anywhere else
SUBPROTOCOL = Subprotocol("icepeer.v1")
ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted`` (capped by the hard
    limit, which root may raise too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, wanted), wanted))
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def percentile(sorted_values: list[int], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list, or None if empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


# -- worker process: holds the client connections ------------------------------


@dataclass
class _Phase:
    """One traffic phase inside a worker."""

    number: int
    closed_loop: bool
    measure_from: int  # monotonic ns
    measure_until: int
    stopping: bool = False
    sent: int = 0
    received: int = 0
    counted: int = 0
    latencies_us: list[int] = field(default_factory=list)


class Worker:
    """Opens ``2 * rooms`` connections, then relays on command from the orchestrator."""

    def __init__(self, urls: list[str], first_room: int, rooms: int, payload: int, concurrency: int) -> None:
        # Room k's first peer goes to urls[k % n], its second to urls[(k + 1) % n]:
        # with several server processes, the two peers of a room are never on the same one.
        self.urls = urls
        self.first_room = first_room
        self.rooms = rooms
        self.pad = "x" * payload
        self.concurrency = concurrency
        # Connections 2k and 2k+1 share a room; ids[i] is the peer id of connection i.
        self.conns: list[ClientConnection] = []
        self.ids: list[str] = []
        self.phase: _Phase | None = None
        self.errors: dict[str, int] = {}
        self.closed = 0
        self.readers: list[asyncio.Task[None]] = []

    async def _join(self, room: str, url: str) -> tuple[ClientConnection, dict[str, Any]]:
        ws = await connect(
            url,
            subprotocols=[SUBPROTOCOL],
            compression=None,
            ping_interval=None,  # the server pings; the load needs its CPU for traffic
            open_timeout=60,
            close_timeout=2,
        )
        await ws.send(json.dumps({"type": "join", "room": room}))
        joined: dict[str, Any] = json.loads(await ws.recv())
        if joined.get("type") != "joined":
            await ws.close()
            raise RuntimeError(f"join refused: {joined}")
        return ws, joined

    async def open(self) -> dict[str, Any]:
        sem = asyncio.Semaphore(self.concurrency)
        pairs: list[tuple[ClientConnection, str, ClientConnection, str]] = []
        failures: list[str] = []

        async def open_room(k: int) -> None:
            room = f"bench-{k}"
            async with sem:
                try:
                    n = len(self.urls)
                    a, ja = await self._join(room, self.urls[k % n])
                    b, jb = await self._join(room, self.urls[(k + 1) % n])
                    arrival = json.loads(await a.recv())
                    if arrival.get("type") != "peer-joined" or jb["peers"] != [ja["peer_id"]]:
                        raise RuntimeError(f"unexpected room state: {arrival} {jb}")
                    pairs.append((a, ja["peer_id"], b, jb["peer_id"]))
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    failures.append(f"{type(exc).__name__}: {exc}")

        started = time.monotonic()
        await asyncio.gather(*(open_room(k) for k in range(self.first_room, self.first_room + self.rooms)))
        elapsed = time.monotonic() - started
        for a, a_id, b, b_id in pairs:
            self.conns += [a, b]
            self.ids += [a_id, b_id]
        self.readers = [asyncio.create_task(self._read(i)) for i in range(len(self.conns))]
        return {
            "event": "ready",
            "connections": len(self.conns),
            "failures": len(failures),
            "first_failure": failures[0] if failures else None,
            "seconds": elapsed,
        }

    def _frame(self, src: int, phase: _Phase) -> str:
        # Built by hand: the load generator's CPU is as scarce as the server's.
        to, t = self.ids[src ^ 1], time.monotonic_ns()
        return f'{{"type":"signal","to":"{to}","data":{{"p":{phase.number},"t":{t},"pad":"{self.pad}"}}}}'

    async def _read(self, i: int) -> None:
        ws = self.conns[i]
        try:
            async for frame in ws:
                now = time.monotonic_ns()
                msg = json.loads(frame)
                kind = msg.get("type")
                if kind != "signal":
                    if kind == "error":
                        self.errors[msg["code"]] = self.errors.get(msg["code"], 0) + 1
                    continue
                data = msg["data"]
                phase = self.phase
                if phase is None or data["p"] != phase.number:
                    continue  # a straggler from an earlier phase
                phase.received += 1
                if phase.measure_from <= now < phase.measure_until:
                    phase.counted += 1
                    phase.latencies_us.append((now - data["t"]) // 1000)
                if phase.closed_loop and not phase.stopping:
                    # Answer with the next message: `window` stay in flight each way.
                    phase.sent += 1
                    await ws.send(self._frame(i, phase))
        except ConnectionClosed:
            pass
        self.closed += 1

    async def run_phase(self, number: int, *, closed_loop: bool, warmup: float, seconds: float,
                        window: int, rate: float) -> dict[str, Any]:
        start = time.monotonic_ns()
        phase = _Phase(
            number=number,
            closed_loop=closed_loop,
            measure_from=start + int(warmup * 1e9),
            measure_until=start + int((warmup + seconds) * 1e9),
        )
        self.phase = phase
        n = len(self.conns)
        if closed_loop:
            # Prime every direction of every room with `window` messages.
            for _ in range(window):
                for i, ws in enumerate(self.conns):
                    phase.sent += 1
                    await ws.send(self._frame(i, phase))
            await asyncio.sleep((phase.measure_until - time.monotonic_ns()) / 1e9)
        else:
            # Open loop: `rate` messages per second, round-robin over every
            # connection, whatever the server's answers do.
            cursor = 0
            while (now := time.monotonic_ns()) < phase.measure_until and n:
                due = int((now - start) / 1e9 * rate) - phase.sent
                for _ in range(due):
                    phase.sent += 1
                    await self.conns[cursor].send(self._frame(cursor, phase))
                    cursor = (cursor + 1) % n
                await asyncio.sleep(0.001)
        phase.stopping = True
        # Let the messages still in flight arrive, so the next phase starts clean.
        deadline = time.monotonic() + 10
        while phase.received < phase.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return {
            "event": "phase",
            "sent": phase.sent,
            "received": phase.received,
            "counted": phase.counted,
            "latencies_us": phase.latencies_us,
            "errors": dict(self.errors),
            "closed": self.closed,
        }

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.conns), return_exceptions=True)
        for task in self.readers:
            task.cancel()


async def worker_main(config: dict[str, Any]) -> None:
    """Serve the orchestrator's commands, one JSON object per line on stdin/stdout."""
    raise_fd_limit(config["rooms"] * 2 + 256)
    worker = Worker(config["urls"], config["first_room"], config["rooms"], config["payload"],
                    config["concurrency"])

    def reply(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply(await worker.open())
    # The connections live until the end: keep the collector from walking them
    # again and again, so that the load generator's own GC pauses stay out of
    # the latencies measured. Relaying creates no reference cycles.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    while line := await asyncio.to_thread(sys.stdin.readline):
        cmd = json.loads(line)
        if cmd["cmd"] == "phase":
            reply(await worker.run_phase(
                cmd["number"], closed_loop=cmd["closed_loop"], warmup=cmd["warmup"],
                seconds=cmd["seconds"], window=cmd["window"], rate=cmd["rate"],
            ))
        elif cmd["cmd"] == "quit":
            break
    await worker.close()
    reply({"event": "bye"})


# -- orchestrator: server process, worker processes, report -------------------


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (proc(5), fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float, float]:
    """CPU seconds of the whole machine, all cores (proc(5), /proc/stat): time
    charged to processes, interrupt time (loopback TCP runs much of its receive
    path in softirq), and time stolen by the hypervisor."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system) / CLK_TCK, (irq + softirq) / CLK_TCK, steal / CLK_TCK


def scrape_metrics(port: int) -> dict[str, float]:
    """The server's /metrics as {name{labels}: value}."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)  # never a proxy
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    metrics = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            metrics[name] = float(value)
    return metrics


class WorkerProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, config: dict[str, Any]) -> WorkerProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28,
        )
        return cls(proc)

    async def send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load worker {self.proc.pid} exited (code {await self.proc.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def run_phase(workers: list[WorkerProcess], server_pids: list[int], number: int, *, closed_loop: bool,
                    args: argparse.Namespace, rate: float = 0.0, redis_pid: int | None = None) -> dict[str, Any]:
    """Run one traffic phase in every worker and merge the results."""
    cmd = {"cmd": "phase", "number": number, "closed_loop": closed_loop, "warmup": args.warmup,
           "seconds": args.seconds, "window": args.window, "rate": rate / len(workers)}
    await asyncio.gather(*(w.send(cmd) for w in workers))
    load_pids = [w.proc.pid for w in workers]
    redis_pids = [redis_pid] if redis_pid else []

    def servers_cpu() -> float:
        return sum(map(cpu_seconds, server_pids))

    await asyncio.sleep(args.warmup)
    cpu1, load1, mach1 = servers_cpu(), sum(map(cpu_seconds, load_pids)), machine_cpu()
    redis1 = sum(map(cpu_seconds, redis_pids))
    await asyncio.sleep(args.seconds)
    cpu2, load2, mach2 = servers_cpu(), sum(map(cpu_seconds, load_pids)), machine_cpu()
    redis2 = sum(map(cpu_seconds, redis_pids))
    procs, irq, steal = (b - a for a, b in zip(mach1, mach2))
    results = [await w.receive() for w in workers]
    latencies = sorted(x for r in results for x in r["latencies_us"])
    counted = sum(r["counted"] for r in results)
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n

    def ms(q: float) -> float | None:
        v = percentile(latencies, q)
        return None if v is None else round(v / 1000, 3)

    return {
        "offered_per_s": round(rate) if not closed_loop else None,
        "relayed_per_s": round(counted / args.seconds),
        "relayed": counted,
        "lost": sum(r["sent"] - r["received"] for r in results),
        "latency_ms": {"p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99), "max": ms(1.0)},
        "server_cpu_percent": round(100 * (cpu2 - cpu1) / args.seconds),
        "server_cpu_us_per_message": round(1e6 * (cpu2 - cpu1) / counted, 1) if counted else None,
        "load_cpu_percent": round(100 * (load2 - load1) / args.seconds),
        "load_cpu_us_per_message": round(1e6 * (load2 - load1) / counted, 1) if counted else None,
        # Anything else running on the machine meanwhile (kernel threads,
        # other people's jobs) and CPU stolen by the hypervisor: a figure
        # measured next to a busy neighbour is not a figure of the server.
        "redis_cpu_percent": round(100 * (redis2 - redis1) / args.seconds) if redis_pids else None,
        "redis_cpu_us_per_message": round(1e6 * (redis2 - redis1) / counted, 1) if redis_pids and counted else None,
        "other_cpu_percent": max(0, round(100 * (procs - (cpu2 - cpu1) - (load2 - load1) - (redis2 - redis1))
                                          / args.seconds)),
        "irq_cpu_percent": round(100 * irq / args.seconds),
        "steal_cpu_percent": round(100 * steal / args.seconds),
        "errors": errors,
        "connections_closed": sum(r["closed"] for r in results),
    }


async def warm_up(url: str) -> None:
    """One room opened and closed, so one-time costs are not charged to the connections."""
    opened = []
    for _ in range(2):
        ws = await connect(url, subprotocols=[SUBPROTOCOL], compression=None)
        await ws.send('{"type":"join","room":"bench-warmup"}')
        await ws.recv()
        opened.append(ws)
    await opened[0].send('{"type":"signal","to":"nobody","data":0}')
    await opened[0].recv()
    for ws in opened:
        await ws.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


async def start_redis(directory: str) -> tuple[asyncio.subprocess.Process, str]:
    """A redis-server on a free loopback port, without persistence."""
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(path, os.X_OK):
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        path, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", directory, "--loglevel", "warning", "--maxclients", "1000",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return proc, f"redis://{HOST}:{port}/0"
    proc.kill()
    raise RuntimeError("redis-server did not start")


def redis_memory_kib(url: str) -> int:
    """used_memory of the Redis at ``url``, in KiB (INFO memory)."""
    import redis  # the `redis` extra; only needed with --servers > 1

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"]) // 1024
    finally:
        client.close()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    rooms = args.peers // 2
    nworkers = max(1, min(args.workers, rooms))
    nservers = args.servers
    # Children inherit the raised limit; each server holds one fd per peer.
    raise_fd_limit(args.peers + 1024)
    redis_dir = tempfile.TemporaryDirectory(prefix="signaling-bench-redis-")
    redis_proc: asyncio.subprocess.Process | None = None
    redis_url = None
    if nservers > 1:
        redis_proc, redis_url = await start_redis(redis_dir.name)
        progress(f"redis-server pid {redis_proc.pid} at {redis_url}")
    server_cmd = [
        sys.executable, "-m", "signaling", "--host", HOST, "--port", "0",
        "--rate", f"{args.rate:g}", "--burst", str(args.burst), "--join-timeout", "0",
        "--max-connections", "0", "--max-per-ip", "0",
        "--log-level", "warning", *(["--redis", redis_url] if redis_url else []), *args.server_arg,
    ]
    servers: list[asyncio.subprocess.Process] = []
    workers: list[WorkerProcess] = []
    try:
        urls, ports = [], []
        for _ in range(nservers):
            server = await asyncio.create_subprocess_exec(*server_cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
            servers.append(server)
            assert server.stdout is not None
            line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode().strip()
            if not line.startswith("listening on ws://127.0.0.1:"):
                raise RuntimeError(f"server did not start: {line!r}")
            url = line.split()[-1]
            urls.append(url)
            ports.append(int(url.rsplit(":", 1)[1]))
            progress(f"server pid {server.pid} at {url}")
            await warm_up(url)
        pids = [p.pid for p in servers]
        await asyncio.sleep(0.5)
        idle = [read_status(pid) for pid in pids]
        redis_idle = redis_memory_kib(redis_url) if redis_url else None
        errors_before = sum_metrics(ports)

        progress(f"opening {rooms * 2} connections in {rooms} rooms from {nworkers} load processes")
        started = time.monotonic()
        share, extra = divmod(rooms, nworkers)
        first = 0
        for i in range(nworkers):
            count = share + (1 if i < extra else 0)
            workers.append(await WorkerProcess.start({
                "urls": urls, "first_room": first, "rooms": count, "payload": args.payload,
                "concurrency": args.connect_concurrency,
            }))
            first += count
        ready = [await w.receive() for w in workers]
        connect_seconds = time.monotonic() - started
        failures = sum(r["failures"] for r in ready)
        if failures:
            progress(f"{failures} rooms failed to open; first: {next(r['first_failure'] for r in ready if r['failures'])}")
        await asyncio.sleep(args.settle)
        loaded = [read_status(pid) for pid in pids]
        redis_loaded = redis_memory_kib(redis_url) if redis_url else None
        metrics = sum_metrics(ports)
        held = int(metrics["icepeer_signaling_connections"])
        rss_idle = sum(x["VmRSS"] for x in idle)
        rss_loaded = sum(x["VmRSS"] for x in loaded)
        rss_delta = rss_loaded - rss_idle
        progress(f"{held} connections held; servers' RSS {rss_idle} -> {rss_loaded} KiB")

        progress(f"closed loop: every room signaling, {args.window} in flight each way, {args.seconds}s")
        redis_pid = redis_proc.pid if redis_proc else None
        flood = await run_phase(workers, pids, 1, closed_loop=True, args=args, redis_pid=redis_pid)
        progress(f"  {flood['relayed_per_s']} relayed/s")
        rate = args.latency_rate or max(1.0, round(flood["relayed_per_s"] * 0.5, -2))
        progress(f"open loop: {rate:.0f} messages/s offered, {args.seconds}s")
        paced = await run_phase(workers, pids, 2, closed_loop=False, args=args, rate=rate, redis_pid=redis_pid)
        after = [read_status(pid) for pid in pids]
        rss_after = sum(x["VmRSS"] for x in after)
        metrics_after = sum_metrics(ports)
        # The warm-up's deliberate unknown-peer error is not the load's.
        server_errors = {
            k.partition("code=")[2].strip('"}'): int(v - errors_before.get(k, 0))
            for k, v in metrics_after.items()
            if k.startswith("icepeer_signaling_errors_total") and v > errors_before.get(k, 0)
        }
        return {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "websockets": websockets.version.version, "kernel": platform.release()},
            "command": " ".join(["benchmarks/signaling_load.py", *sys.argv[1:]]),
            "server_command": " ".join(["python", *server_cmd[1:]]),
            "servers": nservers,
            "redis": redis_url is not None,
            "peers_requested": args.peers,
            "load_processes": nworkers,
            "payload_bytes": args.payload,
            "connections": {
                "held": held,
                "rooms": int(metrics["icepeer_signaling_rooms"]),
                "failed_rooms": failures,
                "open_seconds": round(connect_seconds, 2),
                "held_after_traffic": int(metrics_after["icepeer_signaling_connections"]),
                "per_server": [int(scrape_metrics(p)["icepeer_signaling_connections"]) for p in ports],
            },
            "memory": {
                "rss_idle_kib": rss_idle,
                "rss_loaded_kib": rss_loaded,
                "rss_after_traffic_kib": rss_after,
                "rss_peak_kib": sum(x["VmHWM"] for x in after),
                "kib_per_connection": round(rss_delta / held, 2) if held else None,
                "kib_per_connection_after_traffic": round((rss_after - rss_idle) / held, 2) if held else None,
                "redis_used_kib_idle": redis_idle,
                "redis_used_kib_loaded": redis_loaded,
                "redis_bytes_per_connection": (round(1024 * (redis_loaded - redis_idle) / held)
                                               if redis_loaded is not None and redis_idle is not None and held
                                               else None),
            },
            "closed_loop": flood,
            "open_loop": paced,
            "server_errors": server_errors,
        }
    finally:
        for server in servers:
            await stop(server)
        for w in workers:
            with contextlib.suppress(Exception):
                await w.send({"cmd": "quit"})
        for w in workers:
            try:
                await asyncio.wait_for(w.proc.wait(), 30)
            except TimeoutError:
                w.proc.kill()
                await w.proc.wait()
        if redis_proc is not None:
            await stop(redis_proc)
        redis_dir.cleanup()


def sum_metrics(ports: list[int]) -> dict[str, float]:
    """Every server's /metrics added up."""
    total: dict[str, float] = {}
    for port in ports:
        for name, value in scrape_metrics(port).items():
            total[name] = total.get(name, 0.0) + value
    return total


def render(report: dict[str, Any]) -> str:
    c, m, f, p = report["connections"], report["memory"], report["closed_loop"], report["open_loop"]

    def lat(phase: dict[str, Any]) -> str:
        la = phase["latency_ms"]
        return f"{la['p50']} / {la['p99']} ms (p90 {la['p90']}, max {la['max']})"

    def cpu(phase: dict[str, Any]) -> str:
        redis = (f"redis {phase['redis_cpu_percent']}% ({phase['redis_cpu_us_per_message']} us/msg), "
                 if phase.get("redis_cpu_percent") is not None else "")
        return (f"server{'s' if report['servers'] > 1 else ''} {phase['server_cpu_percent']}% "
                f"({phase['server_cpu_us_per_message']} us/msg), {redis}"
                f"load {phase['load_cpu_percent']}% ({phase['load_cpu_us_per_message']} us/msg), softirq {phase['irq_cpu_percent']}%, "
                f"other processes {phase['other_cpu_percent']}%, steal {phase['steal_cpu_percent']}% "
                "(100% = one core)")

    rows = [
        ("machine", (f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}, "
                    f"websockets {report['machine']['websockets']}")),
        ("server", report["server_command"]),
        ("server processes", (f"{report['servers']}" + (" sharing one redis-server; every room spans two processes"
                                                        if report["redis"] else ""))),
        ("load", f"{report['load_processes']} processes, {report['payload_bytes']}-byte pad per signal"),
        ("connections held", (f"{c['held']} in {c['rooms']} rooms ({c['failed_rooms']} rooms failed; "
                             f"opened in {c['open_seconds']} s)")),
        ("server RSS", f"{m['rss_idle_kib']} KiB idle -> {m['rss_loaded_kib']} KiB loaded"
                       + (f" (per process: {c['per_server']} connections)" if report["servers"] > 1 else "")),
        ("memory per connection", (f"{m['kib_per_connection']} KiB "
                                  f"({m['kib_per_connection_after_traffic']} KiB after traffic, "
                                  f"peak RSS {m['rss_peak_kib']} KiB)")),
        *([("redis memory", (f"{m['redis_used_kib_idle']} KiB idle -> {m['redis_used_kib_loaded']} KiB loaded "
                             f"({m['redis_bytes_per_connection']} bytes per connection)"))]
          if report["redis"] else []),
        ("closed loop relayed", f"{f['relayed_per_s']} msgs/s"),
        ("  latency p50 / p99", lat(f)),
        ("  CPU", cpu(f)),
        ("open loop offered", f"{p['offered_per_s']} msgs/s -> {p['relayed_per_s']} relayed/s"),
        ("  latency p50 / p99", lat(p)),
        ("  CPU", cpu(p)),
        ("lost / errors", (f"{f['lost'] + p['lost']} lost, client errors {f['errors'] or p['errors'] or 'none'}, "
                          f"server errors {report['server_errors'] or 'none'}")),
        ("held after traffic", str(c["held_after_traffic"])),
    ]
    busy = max(f["other_cpu_percent"], p["other_cpu_percent"])
    if busy > 10:
        rows.append(("WARNING", (f"other processes used up to {busy}% CPU during the run: "
                                "the figures above understate the server")))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Load the signaling server from separate processes on 127.0.0.1 and report "
        "connections held, memory per connection, relayed messages/s and relay latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--peers", type=int, default=5000, help="connections to open (two per room)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration of each traffic phase")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured start of each traffic phase")
    parser.add_argument("--settle", type=float, default=0.5,
                        help="seconds to wait after the connections are up before reading RSS")
    parser.add_argument("--workers", type=int, default=2, help="load-generating processes")
    parser.add_argument("--servers", type=int, default=1,
                        help="server processes; more than 1 starts a redis-server and runs them with --redis, "
                        "the two peers of each room on different processes")
    parser.add_argument("--window", type=int, default=1,
                        help="closed loop: messages in flight per direction of each room")
    parser.add_argument("--latency-rate", type=float, default=0.0,
                        help="open loop: messages/s offered in total (0: half the closed-loop rate)")
    parser.add_argument("--payload", type=int, default=200,
                        help="bytes of padding in each signal's data (an ICE candidate is ~200)")
    parser.add_argument("--connect-concurrency", type=int, default=50,
                        help="rooms each load process opens at once")
    parser.add_argument("--rate", type=float, default=1000.0, help="server --rate (frames/s per connection)")
    parser.add_argument("--burst", type=int, default=2000, help="server --burst")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra argument for python -m signaling (repeatable, e.g. --server-arg=--ping-interval=0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(worker_main(json.loads(args.worker)))
        return 0
    if args.peers < 2 or args.peers % 2:
        parser.error("--peers must be an even number, at least 2")
    if args.seconds <= 0 or args.window < 1 or args.workers < 1 or args.servers < 1:
        parser.error("--seconds must be positive, --window, --workers and --servers at least 1")
    try:
        report = asyncio.run(orchestrate(args))
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
