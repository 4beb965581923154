#!/usr/bin/env python3
"""Benchmark WebSockets through a real mongrel2 and wsgid.

Two sides, each behind a mongrel2 of its own, both up for the whole run and
measured in alternating order each round (``--rounds``, default 3):

``wsgid``
    wsgid with ``--workers`` workers (default 2, broker dispatch) and a
    WebSocket handler (``--websocket-handler``) that echoes each message
    with ``wsgid.websocket.send`` and broadcasts on request;
``raw``
    the reference: as many raw pyzmq processes that do the same with no
    WSGI server at all (PULL, split the message, PUBlish the 101 or the
    frame), the least any handler can do.

Per round and side:

a. **echo**: ``--connections`` client sockets (default 8), each keeping
   ``--window`` messages (default 16) of ``--size`` bytes (default 32, text)
   in flight, echoed; messages per second over ``--duration`` seconds after
   a 1 s warm-up, and the CPU the handler processes, mongrel2 and the
   client used meanwhile (100% = one core busy);
b. **broadcast**: ``--sockets`` open sockets (default 1,000); another sends
   one message naming all of them (their connection values, which each
   learnt by asking ``whoami``), the handler sends them one message with a
   single call (mongrel2 takes 128 ids a message: 8 messages); the latency
   of each socket's copy from the trigger, p50 and p99 over the sockets,
   for ``--broadcasts`` broadcasts (default 10) one after the other.

The clients are the ``websockets`` library's (asyncio) in this process, on
the same cores as the servers: its CPU is reported. Reported: the median and
the spread (min-max) of the rounds, and the ratio wsgid/raw of the medians.
RLIMIT_NOFILE is raised to its hard limit (the run needs two descriptors a
broadcast socket, its own and mongrel2's: mongrel2 raises its own to 10,240
as root, its ``superpoll.max_fd``)::

    .venv/bin/python bench/websocket.py [--rounds 3] [--sockets 1000]

Exit status: 0 when every message arrived, once; 2 when something failed
(a message lost or doubled, no answer, the time limit).
"""

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (bench/common.py)
from common import Mongrel2, Wsgid, cpu_seconds, make_app_folder, wait_for  # noqa: E402

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidHandshake  # noqa: E402
from websockets.sync.client import connect as connect_now  # noqa: E402

# The wsgid side's handler: echo, ``whoami`` (its connection value), and
# ``bcast TOKEN CONN...`` (one send to all of them).
HANDLER = '''
from wsgid import websocket


class Bench:
    def open(self, conn, environ):
        return None

    def message(self, conn, data):
        if data == "whoami":
            websocket.send(conn, str(conn))
        elif isinstance(data, str) and data.startswith("bcast "):
            _, token, *conns = data.split(" ")
            websocket.send(conns, "b " + token)
        else:
            websocket.send(conn, data)

    def close(self, conn, code):
        pass


handler = Bench()
'''

# The reference: the same answers from a raw pyzmq handler (argv: its
# mongrel2's send_spec and recv_spec).
RAW_HANDLER = r'''
import json, sys, zmq

ctx = zmq.Context()
pull, pub = ctx.socket(zmq.PULL), ctx.socket(zmq.PUB)
pull.connect(sys.argv[1])
pub.connect(sys.argv[2])


def frame(opcode, payload):
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def reply(sender, ids, body):
    ids = b" ".join(ids)
    pub.send(b"%s %d:%s, %s" % (sender, len(ids), ids, body))


while True:
    msg = pull.recv()
    sender, conn, path, rest = msg.split(b" ", 3)
    size, rest = rest.split(b":", 1)
    headers = json.loads(rest[:int(size)])
    size, rest = rest[int(size) + 1:].split(b":", 1)
    body = rest[:int(size)]
    method = headers.get("METHOD")
    if method == "WEBSOCKET_HANDSHAKE":
        reply(sender, [conn], b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + body + b"\r\n\r\n")
    elif method == "WEBSOCKET":
        opcode = int(headers["FLAGS"], 16) & 0xF
        if opcode == 8:
            reply(sender, [conn], frame(8, body[:2]))
            reply(sender, [conn], b"")
        elif body == b"whoami":
            reply(sender, [conn], frame(1, conn))
        elif body.startswith(b"bcast "):
            _, token, *ids = body.split(b" ")
            out = frame(1, b"b " + token)
            for i in range(0, len(ids), 128):
                reply(sender, ids[i:i + 128], out)
        elif opcode in (1, 2):
            reply(sender, [conn], frame(opcode, body))
'''


class Side:
    """A mongrel2 and its handler processes: wsgid, or the raw reference."""

    def __init__(self, name, base, args):
        self.name = name
        self.m2 = Mongrel2(os.path.join(base, "m2-" + name), uuid=str(uuid.uuid4()))
        self.m2.start()
        self.url = "ws://127.0.0.1:%d/ws" % self.m2.http_port
        self.wsgid, self.raw = None, []
        if name == "wsgid":
            app_path = make_app_folder(base, name="app", sources={
                "benchapp.py": common.HELLO_APP, "wsbench.py": HANDLER})
            self.wsgid = Wsgid(self.m2, app_path, "--websocket-handler", "wsbench:handler",
                               wsgi_app="benchapp:app", workers=args.workers, stdout=False,
                               python=args.python, out_path=os.path.join(base, "wsgid.out"))
            self.wsgid.spawn()
            common.wait_until_serving(self.m2.url, self.wsgid, "wsgid")
            self.wsgid.wait_workers(args.workers)
        else:
            script = os.path.join(base, "raw_handler.py")
            with open(script, "w") as f:
                f.write(RAW_HANDLER)
            self.raw = [subprocess.Popen([args.python, script, self.m2.request_spec,
                                          self.m2.reply_spec]) for _ in range(args.workers)]
        self.wait_ready()

    def wait_ready(self, handshakes=20):
        """Until handshakes succeed (a reply published before mongrel2's
        subscription took is lost: one success does not mean all handler
        processes are connected)."""
        def handshake():
            try:
                with connect_now(self.url, open_timeout=1):
                    return True
            except (OSError, TimeoutError, InvalidHandshake):
                return False
        for _ in range(handshakes):
            wait_for(handshake, 30, interval=0.1, what="a handshake with %s" % self.name)

    def pids(self):
        """The handler's processes, by name."""
        if self.wsgid:
            found = {"master": [self.wsgid.master]}
            found.update(("worker %d" % p, [p]) for p in self.wsgid.workers())
            return found
        return {"raw %d" % p.pid: [p.pid] for p in self.raw}

    def stop(self):
        if self.wsgid:
            self.wsgid.stop()
        for proc in self.raw:
            common.stop_process(proc)
        self.m2.stop()


async def open_sockets(url, count, batch=100):
    sockets = []
    for start in range(0, count, batch):
        sockets += await asyncio.gather(*(
            connect(url, open_timeout=30, max_size=None, ping_interval=None)
            for _ in range(min(batch, count - start))))
    return sockets


async def close_all(sockets):
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def echo(side, args):
    """Messages per second echoed, and the CPU used meanwhile."""
    sockets = await open_sockets(side.url, args.connections)
    payload = "x" * args.size
    state = {"counting": False, "count": 0, "stop": False}

    async def pump(ws):
        for _ in range(args.window):
            await ws.send(payload)
        while not state["stop"]:
            if await ws.recv() != payload:
                raise RuntimeError("a wrong echo")
            if state["counting"]:
                state["count"] += 1
            await ws.send(payload)

    tasks = [asyncio.ensure_future(pump(ws)) for ws in sockets]
    await asyncio.sleep(1.0)    # the warm-up
    groups = dict(side.pids(), mongrel2=[side.m2.proc.pid], client=[os.getpid()])
    cpu0 = {k: sum(map(cpu_seconds, pids)) for k, pids in groups.items()}
    state["counting"], t0 = True, time.monotonic()
    await asyncio.sleep(args.duration)
    state["counting"], wall = False, time.monotonic() - t0
    cpu = {k: (sum(map(cpu_seconds, pids)) - cpu0[k]) / wall * 100
           for k, pids in groups.items()}
    count = state["count"]
    state["stop"] = True
    for task in tasks:
        task.cancel()
    failed = [r for r in await asyncio.gather(*tasks, return_exceptions=True)
              if isinstance(r, Exception)]   # (a cancellation is not one)
    await close_all(sockets)
    if failed:
        raise failed[0]
    return {"rate": count / wall, "cpu": cpu}


async def broadcast(sockets, names, trigger, args):
    """Latencies (ms) of each socket's copy of each broadcast: p50, p99, max
    over the sockets, one dict a broadcast."""
    state = {"token": None, "arrivals": [], "seen": set(), "wrong": []}
    everyone = asyncio.Event()

    async def read(i, ws):    # one reader a socket, for the whole run
        async for got in ws:
            if got != "b %s" % state["token"] or i in state["seen"]:
                state["wrong"].append((i, got))
            state["seen"].add(i)
            state["arrivals"].append(time.monotonic())
            if len(state["arrivals"]) == len(sockets):
                everyone.set()

    readers = [asyncio.ensure_future(read(i, ws)) for i, ws in enumerate(sockets)]
    results = []
    try:
        for n in range(args.broadcasts):
            state.update(token="%d-%d" % (n, time.monotonic_ns()), arrivals=[], seen=set())
            everyone.clear()
            t0 = time.monotonic()
            await trigger.send("bcast %s %s" % (state["token"], " ".join(names)))
            await asyncio.wait_for(everyone.wait(), 30)
            latencies = sorted((t - t0) * 1000 for t in state["arrivals"])
            results.append({"p50": latencies[len(latencies) // 2],
                            "p99": latencies[int(len(latencies) * 0.99) - 1],
                            "max": latencies[-1]})
        await asyncio.sleep(0.5)   # a copy sent twice would come meanwhile
        if state["wrong"] or len(state["arrivals"]) != len(sockets):
            raise RuntimeError("broadcast copies lost, wrong or doubled: %s" % state["wrong"][:5])
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return results


async def ask_names(sockets):
    async def whoami(ws):
        await ws.send("whoami")
        return await asyncio.wait_for(ws.recv(), 30)
    return await asyncio.gather(*(whoami(ws) for ws in sockets))


def spread(values, fmt="%.1f"):
    return (fmt + " (" + fmt + "-" + fmt + ")") % (statistics.median(values), min(values),
                                                 max(values))


async def run(args, base):
    sides = []
    results = {}
    try:
        for name in args.sides.split(","):
            sides.append(Side(name, base, args))
            results[name] = {"echo": [], "bcast": []}
        fans = {}
        for side in sides:
            sockets = await open_sockets(side.url, args.sockets + 1)
            fans[side.name] = (sockets[1:], await ask_names(sockets[1:]), sockets[0])
            print("[%s] %d sockets open" % (side.name, len(sockets)), flush=True)
        for r in range(args.rounds):
            for side in (sides if r % 2 == 0 else sides[::-1]):
                e = await echo(side, args)
                b = await broadcast(*fans[side.name], args)
                results[side.name]["echo"].append(e)
                results[side.name]["bcast"] += b
                print("round %d %-5s echo %8.0f msg/s (CPU %s); broadcast to %d: "
                      "p50 %s ms, p99 %s ms" % (
                          r + 1, side.name, e["rate"],
                          ", ".join("%s %.0f%%" % kv for kv in sorted(e["cpu"].items())),
                          args.sockets, spread([x["p50"] for x in b]),
                          spread([x["p99"] for x in b])), flush=True)
        for sockets, _, trigger in fans.values():
            await close_all(sockets + [trigger])
    finally:
        for side in sides:
            side.stop()
    return results


def summary(args, results):
    print()
    print("=" * 78)
    print("WebSockets through mongrel2: %d handler processes a side, %d rounds "
          "(median (min-max))" % (args.workers, args.rounds))
    print("-" * 78)
    for name, r in results.items():
        print("%-5s echo (%d sockets x %d in flight, %d B): %s msg/s" % (
            name, args.connections, args.window, args.size,
            spread([e["rate"] for e in r["echo"]], "%.0f")))
        print("%-5s broadcast to %d sockets (%d broadcasts a round): p50 %s ms, "
              "p99 %s ms, max %s ms" % (
                  name, args.sockets, args.broadcasts, spread([b["p50"] for b in r["bcast"]]),
                  spread([b["p99"] for b in r["bcast"]]), spread([b["max"] for b in r["bcast"]])))
    if "wsgid" in results and "raw" in results:
        w, raw = results["wsgid"], results["raw"]

        def median(r, part, key):
            return statistics.median(x[key] for x in r[part])
        print("wsgid/raw: echo msg/s %.2f; broadcast p50 %.2f, p99 %.2f" % (
            median(w, "echo", "rate") / median(raw, "echo", "rate"),
            median(w, "bcast", "p50") / median(raw, "bcast", "p50"),
            median(w, "bcast", "p99") / median(raw, "bcast", "p99")))
    print("=" * 78)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2,
                   help="wsgid --workers, and raw handler processes (default 2)")
    p.add_argument("--sides", default="wsgid,raw",
                   help="sides, in the first round's order (default wsgid,raw)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--connections", type=int, default=8, help="(a) echo sockets (default 8)")
    p.add_argument("--window", type=int, default=16,
                   help="(a) messages in flight a socket (default 16, at most 16: mongrel2 "
                        "drops a connection with more replies queued for it)")
    p.add_argument("--size", type=int, default=32, help="(a) message bytes (default 32)")
    p.add_argument("--duration", type=float, default=5, help="(a) seconds (default 5)")
    p.add_argument("--sockets", type=int, default=1000,
                   help="(b) sockets a broadcast reaches (default 1000)")
    p.add_argument("--broadcasts", type=int, default=10,
                   help="(b) broadcasts a round (default 10)")
    common.add_run_args(p, time_limit=300)
    args = p.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * (args.sockets + args.connections) + 256
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if hard < need:
            print("RLIMIT_NOFILE %d: %d needed (raise the hard limit)" % (hard, need))
            return 2
    base = tempfile.mkdtemp(prefix="wsgid-bench-websocket-")
    common.time_limit(args.time_limit)
    try:
        results = asyncio.run(run(args, base))
    except (Exception, common.TimeLimit) as exc:
        print("FAILURE: %s: %s" % (type(exc).__name__, exc))
        return 2
    finally:
        common.time_limit(0)
        common.remove_temp(args, base)
    summary(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
