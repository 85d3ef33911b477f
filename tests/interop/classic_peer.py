#!/usr/bin/python3
"""A classic sleap-RTC peer on aiortc: client-train, client-track and worker, as the classic Python tool behaves.

Run with Debian's interpreter (/usr/bin/python3: python3-aiortc, python3-websockets, the libraries classic uses):
    classic_peer.py client-train --ws URL --http URL --room-id R --token T [--worker-id W] --pkg-path ZIP --out DIR
    classic_peer.py client-track --ws URL --http URL --session-string S --data-path SLP --model-paths DIR... --out DIR
    classic_peer.py worker --ws URL --http URL --room-id R --token T --workdir DIR [--sleap-nn PATH]

Follows docs/../shared/reference/sleap-rtc-classic.md: registration metadata (§6.2, §7.2), discovery and auto-select
(§7.2, §7.4), offer/answer with the complete SDP and no trickle (§4), one channel "my-data-channel", KEEP_ALIVE every
15 s, the text vocabulary of §5.7, FILE_META with single colons, 64 KiB client chunks and 32 KiB worker chunks with the
16 MiB back-pressure, train-script.sh parsing and the classic trainer command line (§5.2), the track package, its
track-script.sh and the TRACK_LOG / INFERENCE_* sequence (§5.3), and the worker's reset after a client (§6.5).

Two things differ from upstream, on purpose, and are documented in README ("Relation to sleap-RTC"):
- upstream's worker calls a send_file it does not have after a track job, so it never returns predictions; this
  worker returns them the way the training results go (FILE_META, chunks, END_OF_FILE), as upstream intended;
- aioice never gathers loopback addresses; CLASSIC_PEER_LOOPBACK=1 makes it gather 127.0.0.1 only, so the test runs
  on the host's loopback like the other tests (the addresses are the only change; ICE itself is aioice's).

What it does is reported on stdout as JSON lines (events): registered, discovered, selected, open, received (every
text message), file (a file received and saved), log, done, error. Exit code 0 when the job ended as classic ends it.
"""
import argparse
import asyncio
import base64
import glob
import json
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import traceback
import urllib.request
import zipfile

try:
    import aioice.ice
    import websockets
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
except ImportError as error:
    print(json.dumps({"ev": "error", "message": f"classic peer needs python3-aiortc and python3-websockets ({sys.executable}): {error}"}), flush=True)
    sys.exit(2)

if os.environ.get("CLASSIC_PEER_LOOPBACK") == "1":
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

KEEP_ALIVE = b"KEEP_ALIVE"
KEEP_ALIVE_INTERVAL_S = 15
CLIENT_CHUNK = 64 * 1024
WORKER_CHUNK = 32 * 1024
BUFFER_LIMIT = 16 * 1024 * 1024
TRAIN_LINE = re.compile(r"^\s*sleap-(?:nn\s+)?train\s+.*--config-name\s+(\S+)")


def emit(event, **fields):
    sys.stdout.write(json.dumps({"ev": event, **fields}) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- signaling (HTTP and WebSocket, §2)

def http_post(base, path, body):
    request = urllib.request.Request(base.rstrip("/") + path, data=json.dumps(body).encode() if body is not None else b"",
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:  # classic logs the failure and goes on
        return {"status_code": e.code, "detail": e.read().decode(errors="replace")}


async def sign_in(http):
    answer = await asyncio.to_thread(http_post, http, "/anonymous-signin", None)
    return answer["id_token"], answer["username"]


def ice_configuration(ice_servers):
    servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in ice_servers or []]
    return RTCConfiguration(iceServers=servers)


def session_string(room_id, token, peer_id):
    # Python's json.dumps default separators and urlsafe base64 with padding (§3).
    return "sleap-session:" + base64.urlsafe_b64encode(json.dumps({"r": room_id, "t": token, "p": peer_id}).encode()).decode()


def parse_session_string(text):
    if not text.startswith("sleap-session:"):
        raise ValueError("Session string must start with 'sleap-session:'")
    data = json.loads(base64.urlsafe_b64decode(text[len("sleap-session:"):]))
    return data.get("r"), data.get("t"), data.get("p")


async def send_file(channel, path, third_field, chunk):
    """FILE_META::name:size:third, binary chunks under the 16 MiB back-pressure, END_OF_FILE (§5.2)."""
    size = os.path.getsize(path)
    channel.send(f"FILE_META::{os.path.basename(path)}:{size}:{third_field}")
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            while channel.bufferedAmount > BUFFER_LIMIT:
                await asyncio.sleep(0.1)
            channel.send(data)
    channel.send("END_OF_FILE")


async def keep_alive(channel):
    while channel.readyState == "open":
        await asyncio.sleep(KEEP_ALIVE_INTERVAL_S)
        if channel.readyState == "open":
            channel.send(KEEP_ALIVE)


class FileReceiver:
    """FILE_META opens a buffer, binary frames append (KEEP_ALIVE dropped), END_OF_FILE writes it under `directory`."""

    def __init__(self, directory):
        self.directory = directory
        self.name = None
        self.buffer = bytearray()

    def on_text(self, text):
        if "FILE_META::" in text:
            self.name = text.split("FILE_META::", 1)[1].split(":")[0]
            self.buffer = bytearray()
            return None
        if text == "END_OF_FILE" and self.name is not None:
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, self.name)
            with open(path, "wb") as f:
                f.write(self.buffer)
            self.name = None
            emit("file", path=path, bytes=os.path.getsize(path))
            return path
        return None

    def on_binary(self, data):
        if data != KEEP_ALIVE and self.name is not None:
            self.buffer.extend(data)


# ---------------------------------------------------------------- clients (§7.2, §5.2, §5.3)

class ClassicClient:
    def __init__(self, args):
        self.args = args
        self.peer_id = None
        self.ws = None
        self.pc = None
        self.answer = asyncio.get_event_loop().create_future()

    async def register(self, room_id, token, role_and_metadata):
        id_token, self.peer_id = await sign_in(self.args.http)
        self.ws = await websockets.connect(self.args.ws, max_size=None)
        message = {"type": "register", "peer_id": self.peer_id, "room_id": room_id, "token": token, "id_token": id_token}
        message.update(role_and_metadata)
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            if reply.get("type") == "registered_auth":
                emit("registered", peer_id=self.peer_id, room_id=room_id)
                return reply
            if reply.get("type") == "error" or "error" in reply:
                raise RuntimeError(f"registration refused: {reply}")

    async def discover(self, room_id):
        await self.ws.send(json.dumps({"type": "discover_peers", "from_peer_id": self.peer_id, "filters": {
            "role": "worker", "room_id": room_id, "tags": ["sleap-rtc"], "properties": {"status": "available"}}}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
            if reply.get("type") == "peer_list":
                emit("discovered", peers=[p["peer_id"] for p in reply["peers"]])
                return reply["peers"]

    async def read_signaling(self):
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("type") == "answer" and not self.answer.done():
                self.answer.set_result(message["sdp"])

    async def connect(self, registered, worker_id, on_open, on_message):
        self.pc = RTCPeerConnection(configuration=ice_configuration(registered.get("ice_servers")))
        channel = self.pc.createDataChannel("my-data-channel")
        channel.on("open", lambda: asyncio.ensure_future(on_open(channel)))
        channel.on("message", on_message)
        # aiortc gathers every candidate inside setLocalDescription: the offer is complete, nothing trickles (§4).
        await self.pc.setLocalDescription(await self.pc.createOffer())
        reader = asyncio.ensure_future(self.read_signaling())
        await self.ws.send(json.dumps({"type": "offer", "sender": self.peer_id, "target": worker_id, "sdp": self.pc.localDescription.sdp}))
        sdp = await asyncio.wait_for(self.answer, 20)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return reader

    async def close(self, delete_path, body):
        if self.pc:
            await self.pc.close()
        if self.ws:
            await self.ws.close()
        await asyncio.to_thread(http_post, self.args.http, delete_path, body)


async def client_train(args):
    client = ClassicClient(args)
    registered = await client.register(args.room_id, args.token, {"role": "client", "metadata": {
        "tags": ["sleap-rtc", "training-client"],
        "properties": {"sleap_version": "1.4.1", "platform": platform.system(), "user_id": os.environ.get("USER", "unknown")}}})
    workers = await client.discover(args.room_id)
    if not workers:
        emit("error", message="No available workers found in room")
        return 1
    if args.worker_id:
        worker_id = args.worker_id
    else:  # auto-select: most GPU memory, ties in server order (§7.4)
        worker_id = sorted(workers, key=lambda p: -int(p["metadata"].get("properties", {}).get("gpu_memory_mb", 0) or 0))[0]["peer_id"]
    emit("selected", worker_id=worker_id)

    receiver = FileReceiver(args.out)
    finished = asyncio.get_event_loop().create_future()

    async def on_open(channel):
        emit("open", label=channel.label)
        asyncio.ensure_future(keep_alive(channel))
        channel.send("PACKAGE_TYPE::train")
        channel.send("OUTPUT_DIR::models")
        await send_file(channel, args.pkg_path, "False", CLIENT_CHUNK)
        emit("uploaded", bytes=os.path.getsize(args.pkg_path))

    def on_message(message):
        if isinstance(message, bytes):
            receiver.on_binary(message)
            return
        emit("received", text=message)
        path = receiver.on_text(message)
        # Classic's CLI never exits by itself once the results are saved (§5.2): this fixture stops there.
        if path and not finished.done():
            finished.set_result(path)

    reader = await client.connect(registered, worker_id, on_open, on_message)
    await asyncio.wait_for(finished, args.timeout)
    reader.cancel()
    await client.close("/delete-peer", {"peer_id": client.peer_id})
    emit("done", path=finished.result())
    return 0


def create_track_package(data_path, model_paths, output):
    """Classic create_track_package (§5.3): the .slp, models/<dir> for each model, track-script.sh; zipped flat."""
    staging = tempfile.mkdtemp(prefix="classic-track-")
    shutil.copy(data_path, staging)
    lines = [f"sleap-nn track --data_path {os.path.basename(data_path)}", "--only_suggested_frames"]
    for model in model_paths:
        name = os.path.basename(os.path.normpath(model))
        shutil.copytree(model, os.path.join(staging, "models", name))
        lines.append(f"--model_paths models/{name}")
    lines.append(f"-o {output}")
    with open(os.path.join(staging, "track-script.sh"), "w") as f:
        f.write(" \\\n    ".join(lines) + "\n")
    zip_path = os.path.join(tempfile.mkdtemp(prefix="classic-track-zip-"), "track_package.zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, files in os.walk(staging):
            for name in files:
                full = os.path.join(root, name)
                archive.write(full, os.path.relpath(full, staging))
    return zip_path


async def client_track(args):
    room_id, token, worker_id = parse_session_string(args.session_string)
    client = ClassicClient(args)
    # The track client registers without role or metadata (§7.2 step 3).
    registered = await client.register(room_id, token, {})
    package = create_track_package(args.data_path, args.model_paths, args.output)
    receiver = FileReceiver(args.out)
    done = asyncio.get_event_loop().create_future()
    saved = []

    async def on_open(channel):
        emit("open", label=channel.label)
        asyncio.ensure_future(keep_alive(channel))
        channel.send("PACKAGE_TYPE::track")
        await asyncio.sleep(0.1)
        channel.send("OUTPUT_DIR::.")
        await asyncio.sleep(0.1)
        await send_file(channel, package, "false", CLIENT_CHUNK)
        emit("uploaded", bytes=os.path.getsize(package))

    def on_message(message):
        if isinstance(message, bytes):
            receiver.on_binary(message)
            return
        emit("received", text=message)
        if message.startswith("TRACK_LOG:"):
            emit("log", line=message[len("TRACK_LOG:"):].rstrip("\n"))
        path = receiver.on_text(message)
        if path:
            saved.append(path)
        if message in ("INFERENCE_JOBS_DONE",) or message.startswith("INFERENCE_ERROR::"):
            if not done.done():
                done.set_result(message)

    reader = await client.connect(registered, worker_id, on_open, on_message)
    outcome = await asyncio.wait_for(done, args.timeout)
    reader.cancel()
    # Classic's track client deletes the whole room on exit, with no token (§2.1); a server may refuse that.
    await client.close("/delete-peers-and-room", {"room_id": room_id})
    emit("done", outcome=outcome, files=saved)
    return 0 if outcome == "INFERENCE_JOBS_DONE" else 1


# ---------------------------------------------------------------- worker (§6, §5.2, §5.3)

class ClassicWorker:
    def __init__(self, args):
        self.args = args
        self.peer_id = None
        self.id_token = None
        self.ws = None
        self.pc = None
        self.ice_servers = []
        self.status = "available"
        self.reset_job()

    def reset_job(self):
        self.package_type = None
        self.output_dir = "models"
        self.receiver = FileReceiver(".")

    def metadata(self):
        return {"tags": ["sleap-rtc", "training-worker", "inference-worker"], "properties": {
            "gpu_memory_mb": 0, "gpu_model": "CPU", "sleap_version": "unknown", "cuda_version": "N/A",
            "hostname": socket.gethostname(), "status": self.status, "max_concurrent_jobs": 1,
            "supported_models": ["base", "centroid", "topdown"], "supported_job_types": ["training", "inference"]}}

    async def register(self):
        await self.ws.send(json.dumps({"type": "register", "peer_id": self.peer_id, "room_id": self.args.room_id,
                                       "token": self.args.token, "id_token": self.id_token, "role": "worker",
                                       "metadata": self.metadata(), "is_admin": True}))

    async def set_status(self, status):
        self.status = status
        await self.ws.send(json.dumps({"type": "update_metadata", "peer_id": self.peer_id, "metadata": {"properties": {"status": status}}}))

    async def run(self):
        os.makedirs(self.args.workdir, exist_ok=True)
        os.chdir(self.args.workdir)  # classic saves and unpacks into its working directory
        self.id_token, self.peer_id = await sign_in(self.args.http)
        self.ws = await websockets.connect(self.args.ws, max_size=None)
        await self.register()
        async for raw in self.ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "registered_auth":
                self.ice_servers = message.get("ice_servers") or []
                emit("registered", peer_id=self.peer_id, room_id=self.args.room_id,
                     session_string=session_string(self.args.room_id, self.args.token, self.peer_id))
            elif kind == "offer":
                await self.on_offer(message)
            elif kind == "error" and message.get("reason") not in (None,) and "registration" in str(message.get("reason")).lower():
                emit("error", message=str(message))
                return 1
        return 0

    async def on_offer(self, message):
        client = message["sender"]
        if self.status != "available":
            await self.ws.send(json.dumps({"type": "error", "target": client, "reason": "worker_busy",
                                           "message": f"Worker is currently {self.status}. Please use --room-id and --token to discover available workers.",
                                           "current_status": self.status}))
            return
        await self.set_status("reserved")
        self.pc = RTCPeerConnection(configuration=ice_configuration(self.ice_servers))
        pc = self.pc
        pc.on("datachannel", self.on_datachannel)
        pc.on("connectionstatechange", lambda: asyncio.ensure_future(self.on_state(pc)))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.ws.send(json.dumps({"type": "answer", "sender": self.peer_id, "target": client, "sdp": pc.localDescription.sdp}))

    async def on_state(self, pc):
        emit("state", state=pc.connectionState)
        if pc.connectionState in ("failed", "closed") and pc is self.pc:
            # §6.5: a fresh start for the next client: close, clear the job, available again, full re-register.
            self.pc = None
            await pc.close()
            self.reset_job()
            self.status = "available"
            await self.register()
            emit("ready")

    def on_datachannel(self, channel):
        emit("open", label=channel.label)
        asyncio.ensure_future(keep_alive(channel))

        def on_message(message):
            if isinstance(message, bytes):
                self.receiver.on_binary(message)
                return
            emit("received", text=message)
            if message.startswith("PACKAGE_TYPE::"):
                self.package_type = message.split("::", 1)[1]
            elif message.startswith("OUTPUT_DIR::"):
                self.output_dir = message.split("::", 1)[1]
            else:
                path = self.receiver.on_text(message)
                if path:
                    asyncio.ensure_future(self.run_job(channel, path))

        channel.on("message", on_message)

    async def run_job(self, channel, path):
        try:
            if path.endswith(".zip"):
                with zipfile.ZipFile(path) as archive:
                    archive.extractall(".")
            # Classic assumes the zip holds a folder named like the zip (§5.2).
            workdir = os.path.abspath(os.path.splitext(os.path.basename(path))[0])
            if self.package_type == "track":
                await self.run_track(channel, workdir)
            else:
                await self.run_train(channel, workdir, os.path.basename(path))
        except Exception:
            emit("error", message=traceback.format_exc())

    async def stream(self, channel, command, cwd, prefix=None):
        """Runs the command (stderr into stdout, PYTHONUNBUFFERED=1) and sends its output as classic does (§5.5);
        with a prefix (TRACK_LOG:) one message per line instead. Returns the exit code."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        process = await asyncio.create_subprocess_exec(*command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        if prefix is not None:
            async for line in process.stdout:
                channel.send(prefix + line.decode(errors="replace"))
            return await process.wait()
        pending = ""
        while True:
            data = await process.stdout.read(512)
            if not data:
                break
            pending += data.decode(errors="replace")
            while True:
                cut = min((i for i in (pending.find("\n"), pending.find("\r")) if i >= 0), default=-1)
                if cut < 0:
                    break
                segment, separator, pending = pending[:cut], pending[cut], pending[cut + 1:]
                channel.send(segment + "\n" if separator == "\n" else "\r" + segment)
            if len(pending) >= 64 * 1024:
                channel.send("\r" + pending)
                pending = ""
        if pending:
            channel.send(pending + "\n")
        return await process.wait()

    async def run_train(self, channel, workdir, uploaded_name):
        with open(os.path.join(workdir, "train-script.sh")) as f:
            configs = [m.group(1) for m in (TRAIN_LINE.match(line) for line in f) if m]
        for config in configs:
            stem = os.path.splitext(os.path.basename(config))[0]
            channel.send(f"TRAIN_JOB_START::{stem}")
            code = await self.stream(channel, [self.args.sleap_nn, "train", "--config-name", config, "--config-dir", ".",
                                               "trainer_config.ckpt_dir=models", f"trainer_config.run_name={stem}",
                                               "trainer_config.zmq.controller_port=9000", "trainer_config.zmq.publish_port=9001",
                                               "trainer_config.train_data_loader.num_workers=0",
                                               "trainer_config.val_data_loader.num_workers=0"], workdir)
            channel.send(f"TRAIN_JOB_END::{stem}" if code == 0 else f"TRAIN_JOB_ERROR::{stem}::{code}")
        channel.send("TRAINING_JOBS_DONE")
        results = shutil.make_archive(os.path.abspath(f"trained_{uploaded_name[:-4]}"), "zip", root_dir=os.path.join(workdir, self.output_dir))
        await send_file(channel, results, self.output_dir, WORKER_CHUNK)
        emit("sent", path=results)

    async def run_track(self, channel, workdir):
        script = os.path.join(workdir, "track-script.sh")
        if not os.path.exists(script):
            channel.send("INFERENCE_ERROR::No track script found")
            return
        with open(script) as f:
            joined = f.read().replace("\\\n", " ")
        commands = [line.split() for line in joined.splitlines() if line.strip().startswith("sleap-nn track")]
        channel.send("INFERENCE_START")
        for command in commands:
            channel.send("INFERENCE_JOB_START::inference")
            code = await self.stream(channel, [self.args.sleap_nn] + command[1:], workdir, prefix="TRACK_LOG:")
            channel.send("INFERENCE_JOB_END::inference" if code == 0 else f"INFERENCE_JOB_ERROR::inference::{code}")
        for predictions in glob.glob(os.path.join(workdir, "*.predictions.slp")):
            await send_file(channel, predictions, self.output_dir, WORKER_CHUNK)
            emit("sent", path=predictions)
        channel.send("INFERENCE_JOBS_DONE")


# ---------------------------------------------------------------- command line

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["client-train", "client-track", "worker"])
    parser.add_argument("--ws", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--room-id")
    parser.add_argument("--token")
    parser.add_argument("--worker-id")
    parser.add_argument("--session-string")
    parser.add_argument("--pkg-path")
    parser.add_argument("--data-path")
    parser.add_argument("--model-paths", nargs="+")
    parser.add_argument("--output", default="predictions.slp")
    parser.add_argument("--out", default=".")
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--sleap-nn", default="sleap-nn")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    run = {"client-train": client_train, "client-track": client_track, "worker": lambda a: ClassicWorker(a).run()}[args.mode]
    try:
        sys.exit(asyncio.run(run(args)))
    except Exception:
        emit("error", message=traceback.format_exc())
        sys.exit(1)


if __name__ == "__main__":
    main()
