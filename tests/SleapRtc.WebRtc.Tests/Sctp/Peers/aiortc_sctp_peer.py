#!/usr/bin/python3
"""aiortc's SCTP association and data channels over plain UDP on loopback (no ICE, no DTLS).

Test fixture for the managed SCTP stack: it echoes every message it receives on a channel the test opens,
opens one channel of its own ("from-aiortc") and greets on it, and closes a channel when asked with the
text "close-me". Usage: aiortc_sctp_peer.py <client|server> <local port> <remote port>
Prints JSON lines (events) on stdout.
"""
import asyncio
import json
import sys

from aiortc import RTCDataChannel, RTCDataChannelParameters
from aiortc.rtcsctptransport import RTCSctpCapabilities, RTCSctpTransport


def emit(**event):
    print(json.dumps(event), flush=True)


class LoopbackIce:
    def __init__(self, role):
        self.role = role


class UdpAsDtls:
    """The four members RTCSctpTransport uses from RTCDtlsTransport, backed by a UDP socket."""

    def __init__(self, role):
        self.state = "connected"
        self.transport = LoopbackIce(role)
        self._receiver = None
        self._udp = None
        self._remote = None
        self._queue = asyncio.Queue()

    def _register_data_receiver(self, receiver):
        self._receiver = receiver

    def _unregister_data_receiver(self, receiver):
        self._receiver = None

    async def _send_data(self, data):
        self._udp.sendto(data, self._remote)

    async def pump(self):
        while True:
            data = await self._queue.get()
            if self._receiver is not None:
                await self._receiver._handle_data(data)


class Protocol(asyncio.DatagramProtocol):
    def __init__(self, dtls):
        self.dtls = dtls

    def datagram_received(self, data, addr):
        self.dtls._queue.put_nowait(data)


async def main():
    role, local_port, remote_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    loop = asyncio.get_running_loop()
    dtls = UdpAsDtls("controlling" if role == "client" else "controlled")
    udp, _ = await loop.create_datagram_endpoint(lambda: Protocol(dtls), local_addr=("127.0.0.1", local_port))
    dtls._udp = udp
    dtls._remote = ("127.0.0.1", remote_port)
    asyncio.ensure_future(dtls.pump())
    sctp = RTCSctpTransport(dtls)

    @sctp.on("datachannel")
    def on_datachannel(channel):
        emit(event="channel", label=channel.label, id=channel.id)

        @channel.on("message")
        def on_message(message):
            if message == "close-me":
                channel.close()
                return
            channel.send(message)

        @channel.on("close")
        def on_close():
            emit(event="closed", label=channel.label)

    emit(event="ready")
    await sctp.start(RTCSctpCapabilities(maxMessageSize=65536), 5000)
    while sctp._association_state != RTCSctpTransport.State.ESTABLISHED:
        await asyncio.sleep(0.01)
    emit(event="established")
    own = RTCDataChannel(sctp, RTCDataChannelParameters(label="from-aiortc"))

    @own.on("open")
    def on_open():
        own.send("hello from aiortc")

    await asyncio.sleep(3600)


asyncio.run(main())
