#!/usr/bin/python3
"""Interop fixture: an aiortc peer with the same JSON-lines protocol as peer_core.mjs.

Run with Debian's interpreter (/usr/bin/python3), the only one that has python3-aiortc:
    /usr/bin/python3 aiortc_peer.py
Commands on stdin: start, sdp, send, expect, sendText, expectText, echo, close, exit.
Events on stdout: ready, sdp, open, sent, expecting, received, textSent, textReceived, closed, pcClosed, error.
PEER_ALLOW (default "127.0.0.1,10.99.") filters the candidates written into our SDP.
"""
import asyncio
import hashlib
import json
import os
import resource
import sys
import time
import traceback

try:
    import aiortc
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
except ImportError as error:  # reported as a line so the test fails with a clear message
    print(json.dumps({"ev": "error", "cmd": "load", "message": f"aiortc not importable by {sys.executable}: {error}"}), flush=True)
    sys.exit(2)

if os.environ.get("PEER_SCTP_LOG"):
    # Diagnosis aid: aiortc's own account of control chunks (stream resets, shutdown, abort) in a file, and the
    # namespace's UDP counters after a close (RcvbufErrors: datagrams the kernel dropped for a full socket buffer).
    import logging

    class ControlChunks(logging.Filter):
        def filter(self, record):
            text = record.getMessage()
            return any(word in text for word in ("Reconfig", "Reset", "Shutdown", "Abort", "state"))

    handler = logging.FileHandler(os.environ["PEER_SCTP_LOG"])
    handler.addFilter(ControlChunks())
    handler.setFormatter(logging.Formatter("%(relativeCreated)d %(message)s"))
    sctp_logger = logging.getLogger("aiortc.rtcsctptransport")
    sctp_logger.setLevel(logging.DEBUG)
    sctp_logger.addHandler(handler)


HIGH_WATER = 1 << 20
LOW_WATER = 256 << 10
CLOSE_TIMEOUT_S = 10.0
ALLOWED = [p for p in os.environ.get("PEER_ALLOW", "127.0.0.1,10.99.").split(",") if p]


def emit(event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def now_ms():
    return time.perf_counter() * 1000.0


def filter_sdp(sdp):
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split(" ")
            if len(parts) < 5 or not any(parts[4].startswith(p) for p in ALLOWED):
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n"


class FixturePeer:
    def __init__(self):
        self.pc = None
        self.dc = None
        self.echo = False
        self.closing_locally = False
        self.closed_event = None
        self.t0 = 0.0
        self.texts = []
        self.text_target = None
        self.byte_target = None
        self.reset_receive()

    def reset_receive(self):
        self.rx = {"bytes": 0, "messages": 0, "first": 0.0, "last": 0.0, "hasher": None}

    async def handle(self, command):
        name = command.get("cmd")
        try:
            if name == "start":
                await self.start_offer(command)
            elif name == "sdp":
                if command["type"] == "offer":
                    await self.accept_offer(command["sdp"])
                else:
                    await self.pc.setRemoteDescription(RTCSessionDescription(sdp=command["sdp"], type="answer"))
            elif name == "send":
                await self.send_bytes(command)
            elif name == "expect":
                self.byte_target = {"bytes": command["bytes"], "hash": command.get("hash", True) is not False}
                emit({"ev": "expecting", "bytes": command["bytes"]})
                self.check_bytes()
            elif name == "sendText":
                await self.send_texts(command)
            elif name == "expectText":
                self.text_target = {"count": command["count"], "prefix": command.get("prefix", "msg")}
                self.check_texts()
            elif name == "echo":
                self.echo = bool(command.get("on"))
                emit({"ev": "echo", "on": self.echo})
            elif name == "close":
                await self.close()
            elif name == "exit":
                if self.pc:
                    await self.pc.close()
                raise SystemExit(0)
            else:
                raise ValueError(f"unknown command {name}")
        except SystemExit:
            raise
        except Exception:  # every failure becomes an error line; the test decides
            emit({"ev": "error", "cmd": name, "message": traceback.format_exc()})

    async def new_peer_connection(self):
        if self.pc:
            await self.pc.close()
        self.dc = None
        self.closing_locally = False
        self.texts = []
        self.reset_receive()
        self.t0 = now_ms()
        self.pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))
        return self.pc

    async def start_offer(self, command):
        pc = await self.new_peer_connection()
        self.attach(pc.createDataChannel(command.get("label", "data")))
        # aiortc gathers completely inside setLocalDescription: the SDP already holds every candidate.
        await pc.setLocalDescription(await pc.createOffer())
        emit({"ev": "sdp", "type": "offer", "sdp": filter_sdp(pc.localDescription.sdp)})

    async def accept_offer(self, sdp):
        pc = await self.new_peer_connection()
        pc.on("datachannel", self.attach)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"ev": "sdp", "type": "answer", "sdp": filter_sdp(pc.localDescription.sdp)})

    def attach(self, channel):
        def opened():
            if self.dc is channel:
                return
            self.dc = channel
            emit({"ev": "open", "label": channel.label, "id": channel.id, "ms": round(now_ms() - self.t0)})

        def closed():
            emit({"ev": "closed", "by": "local" if self.closing_locally else "remote"})
            if self.closed_event:
                self.closed_event.set()

        channel.on("open", opened)
        channel.on("message", self.on_message)
        channel.on("close", closed)
        if channel.readyState == "open":
            opened()

    def on_message(self, data):
        if isinstance(data, str):
            if self.echo:
                self.dc.send(data)
            self.texts.append(data)
            self.check_texts()
            return
        if self.echo:
            self.dc.send(bytes(data))
        rx = self.rx
        t = now_ms()
        if rx["messages"] == 0:
            rx["first"] = t
            wants_hash = self.byte_target is None or self.byte_target["hash"]
            rx["hasher"] = hashlib.sha256() if wants_hash else None
        if rx["hasher"] is not None:
            rx["hasher"].update(data)
        rx["bytes"] += len(data)
        rx["messages"] += 1
        rx["last"] = t
        self.check_bytes()

    def check_bytes(self):
        target = self.byte_target
        rx = self.rx
        if target is None or rx["bytes"] < target["bytes"]:
            return
        self.byte_target = None
        self.reset_receive()
        ms = rx["last"] - rx["first"]
        emit({"ev": "received", "bytes": rx["bytes"], "messages": rx["messages"],
              "sha256": rx["hasher"].hexdigest() if rx["hasher"] else None, "ms": round(ms),
              "MBps": round(rx["bytes"] / 1e3 / ms, 2) if ms > 0 else None})

    def check_texts(self):
        target = self.text_target
        if target is None or len(self.texts) < target["count"]:
            return
        self.text_target = None
        got, self.texts = self.texts[:target["count"]], self.texts[target["count"]:]
        mismatch = next((i for i, text in enumerate(got) if text != f"{target['prefix']} {i}"), -1)
        emit({"ev": "textReceived", "count": len(got), "inOrder": mismatch < 0, "firstMismatch": mismatch,
              "sample": None if mismatch < 0 else got[mismatch]})

    def require_open(self):
        if self.dc is None or self.dc.readyState != "open":
            raise RuntimeError("data channel is not open")
        return self.dc

    async def wait_low(self, channel, low):
        while channel.bufferedAmount > low:
            if channel.readyState != "open":
                raise RuntimeError(f"channel {channel.readyState} while sending")
            await asyncio.sleep(0.001)

    async def send_bytes(self, command):
        channel = self.require_open()
        total = command["bytes"]
        chunk = command.get("chunk", 65536)
        high = command.get("high", HIGH_WATER)
        low = command.get("low", LOW_WATER)
        hasher = None if command.get("hash", True) is False else hashlib.sha256()
        pool = [os.urandom(chunk) for _ in range(16)] if command.get("source") == "pool" else None
        started = now_ms()
        sent = index = 0
        while sent < total:
            if channel.bufferedAmount > high:
                await self.wait_low(channel, low)
            size = min(chunk, total - sent)
            message = pool[index % len(pool)][:size] if pool else os.urandom(size)
            if hasher:
                hasher.update(message)
            channel.send(message)
            sent += size
            index += 1
        await self.wait_low(channel, 0)
        emit({"ev": "sent", "bytes": sent, "messages": index, "sha256": hasher.hexdigest() if hasher else None,
              "ms": round(now_ms() - started),
              "peakRssMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})

    async def send_texts(self, command):
        channel = self.require_open()
        prefix = command.get("prefix", "msg")
        for i in range(command["count"]):
            if channel.bufferedAmount > HIGH_WATER:
                await self.wait_low(channel, LOW_WATER)
            channel.send(f"{prefix} {i}")
        await self.wait_low(channel, 0)
        emit({"ev": "textSent", "count": command["count"]})

    async def close(self):
        channel = self.dc
        if channel is not None and channel.readyState != "closed":
            self.closing_locally = True
            self.closed_event = asyncio.Event()
            channel.close()
            try:
                await asyncio.wait_for(self.closed_event.wait(), CLOSE_TIMEOUT_S)
            finally:
                if os.environ.get("PEER_SCTP_LOG"):
                    with open("/proc/self/net/snmp") as snmp, open(os.environ["PEER_SCTP_LOG"], "a") as out:
                        out.write("".join(l for l in snmp if l.startswith("Udp:")))
        if self.pc:
            await self.pc.close()
            self.pc = None
        emit({"ev": "pcClosed"})


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    peer = FixturePeer()
    if os.environ.get("PEER_TRACE") == "1":
        async def trace():
            while True:
                await asyncio.sleep(1)
                sys.stderr.write(f"trace: rx {peer.rx['bytes']} bytes {peer.rx['messages']} messages\n")
        asyncio.ensure_future(trace())
    emit({"ev": "ready", "engine": "aiortc", "version": getattr(aiortc, "__version__", "?"), "pid": os.getpid()})
    while True:
        line = await reader.readline()
        if not line:  # the test went away: do not linger
            break
        line = line.strip()
        if not line:
            continue
        try:
            command = json.loads(line)
        except ValueError:
            emit({"ev": "error", "cmd": "parse", "message": f"bad JSON: {line[:80]!r}"})
            continue
        try:
            await peer.handle(command)
        except SystemExit:
            break
    if peer.pc:
        await peer.pc.close()


if __name__ == "__main__":
    asyncio.run(main())
