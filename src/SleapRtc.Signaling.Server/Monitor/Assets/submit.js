// SleapRtc monitor, submit panel: run inference from the browser on a room's inference spaces and available
// workers. The payload goes peer to peer: the page opens its own WebRTC data channel to the worker with the
// browser's RTCPeerConnection and sends the classic track job over it (PACKAGE_TYPE::track, OUTPUT_DIR, FILE_META,
// binary chunks, END_OF_FILE), exactly as Submit-SleapInference does; the signaling server only relays the offer
// and the answer. The room token travels only in the register message our server needs (never in a URL, never
// logged), and everything a worker sends is rendered with textContent.
// monitor.js tells this script about the room with a "sleaprtc:room" event on document after every change.
"use strict";

(function () {
  const CHUNK_BYTES = 64 * 1024;             // classic chunk size (aiortc's max message size)
  const HIGH_WATER = 1024 * 1024;            // pause above this much buffered in the channel…
  const LOW_WATER = 256 * 1024;              // …and resume below this
  const CONNECT_TIMEOUT_MS = 30000;
  const GATHER_CAP_MS = 1000;                // an unreachable STUN server must not hold the offer back longer
  const SPARE_MS = 120000;                   // a signaling connection opened when files were picked waits this long
  const KEEP_ALIVE_MS = 15000, CLASSIC_SILENCE_MS = 25000;   // classic peers: binary KEEP_ALIVE, 25 s of silence
  const HEARTBEAT_MS = 2000, HEARTBEAT_SILENCE_MS = 8000;    // our extension, once the worker agreed
  const LOG_LINES = 200;
  const ZIP_LIMIT = 0xffffffff;              // no zip64: packages up to 4 GiB
  const PACKAGE_NAME = "track_package.zip", PACKAGE_FOLDER = "track_package";
  const CHANNEL_LABEL = "my-data-channel";   // the label our client and classic clients use
  const KEEP_ALIVE = new TextEncoder().encode("KEEP_ALIVE");

  const panels = new Map();                  // "space:<name>" or "worker:<peer id>" -> Panel
  const room = { id: null, token: null, workers: [] };

  // ---- The classic data-channel vocabulary (JobMessages) -------------------------------------------------------

  const Wire = {
    format: (type, ...args) => [type, ...args].join("::"),
    parse(text) {
      const at = text.indexOf("::");
      if (at < 0) return { type: text.trim(), args: [] };
      const type = text.slice(0, at), rest = text.slice(at + 2);
      // These keep their argument whole (FILE_META has single colons inside, the others carry JSON).
      if (["FILE_META", "SLEAPRTC_PROGRESS", "SLEAPRTC_HELLO", "SLEAPRTC_WELCOME"].includes(type)) return { type, args: [rest] };
      return { type, args: rest.split("::") };
    },
    isKeepAlive(bytes) {
      return bytes.byteLength === KEEP_ALIVE.length && KEEP_ALIVE.every((b, i) => bytes[i] === b);
    },
  };

  // ---- The channel bound to the room token (ChannelAuthExchange in SleapRtc.Protocol; the same bytes) --------------
  // Before anything of a request, the page and a worker that advertises sleaprtc_ext >= 2 prove over the channel
  // itself that they hold the room token and see the same pair of DTLS certificates: key = HKDF-SHA256(token, no salt,
  // info LABEL); each sends HMAC(key, LABEL 0 role 0 fp(page cert) fp(worker cert) page nonce worker nonce). The page's
  // fingerprint comes from its own SDP (the browser wrote it), the worker's from the certificate it presented in the DTLS
  // handshake (RTCDtlsTransport.getRemoteCertificates), never from the answer the server relayed. A server that swapped
  // the fingerprints to sit in the middle makes the MACs differ: the request stops before a byte of data is sent.

  const ChannelAuth = {
    LABEL: "sleap-rtc channel auth v1",

    /** Null when this page can make the proof, else why not (then it is sent as a classic client, unverified). */
    unavailableReason(pc) {
      if (!window.crypto || !crypto.subtle) return "WebCrypto is only available on https:// or localhost pages";
      const transport = pc.sctp && pc.sctp.transport;
      if (!transport || typeof transport.getRemoteCertificates !== "function") return "this browser does not expose the worker's DTLS certificate";
      if (!/^a=fingerprint:sha-256 /im.test(pc.localDescription.sdp)) return "this browser's certificate fingerprint is not SHA-256";
      return null;
    },

    async prove(channel, pc, token) {
      const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
      const unhex = (text) => (/^[0-9a-f]{64}$/i.test(text || "") ? new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16))) : null);
      const utf8 = (text) => new TextEncoder().encode(text);
      const local = new Uint8Array(/^a=fingerprint:sha-256 ([0-9a-f:]+)/im.exec(pc.localDescription.sdp)[1].split(":").map((h) => parseInt(h, 16)));
      const certificates = pc.sctp.transport.getRemoteCertificates();
      if (!certificates || certificates.length === 0) throw new Error("The worker's DTLS certificate is not known; the channel cannot be authenticated.");
      const remote = new Uint8Array(await crypto.subtle.digest("SHA-256", certificates[0]));
      const ikm = await crypto.subtle.importKey("raw", utf8(token), "HKDF", false, ["deriveBits"]);
      const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: utf8(this.LABEL) }, ikm, 256);
      const key = await crypto.subtle.importKey("raw", bits, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
      const pageNonce = crypto.getRandomValues(new Uint8Array(32));
      let workerNonce = null;
      const input = (role) => {
        const parts = [utf8(this.LABEL), [0], utf8(role), [0], local, remote, pageNonce, workerNonce];
        const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        parts.reduce((at, p) => { bytes.set(p, at); return at + p.length; }, 0);
        return bytes;
      };
      const failed = (detail) => new Error("The channel to the worker could not be authenticated (" + detail + "); the signaling path may be " +
        "compromised (someone may be relaying the connection). Nothing was sent.");
      const replies = [];
      let wake = null;
      const listener = (event) => {
        if (typeof event.data !== "string" || !event.data.startsWith("SLEAPRTC_AUTH")) return;
        replies.push(event.data);
        if (wake) wake();
      };
      const next = () => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(failed("the worker did not answer in time")), CONNECT_TIMEOUT_MS);
        const take = () => { clearTimeout(timer); wake = null; resolve(Wire.parse(replies.shift())); };
        if (replies.length > 0) take(); else wake = take;
      });
      channel.addEventListener("message", listener);
      try {
        channel.send(Wire.format("SLEAPRTC_AUTH", hex(pageNonce)));
        const response = await next();
        if (response.type === "SLEAPRTC_AUTH_FAILED") throw failed("the worker refused: " + (response.args[1] || response.args[0]));
        workerNonce = response.type === "SLEAPRTC_AUTH_RESPONSE" ? unhex(response.args[0]) : null;
        const workerMac = unhex(response.args[1]);
        // crypto.subtle.verify compares in constant time.
        if (!workerNonce || !workerMac || !(await crypto.subtle.verify("HMAC", key, workerMac, input("worker")))) {
          channel.send(Wire.format("SLEAPRTC_AUTH_FAILED", "proof_mismatch", "the peer's proof does not match this room token and these DTLS certificates"));
          throw failed("the worker's proof does not match this room token and the DTLS certificates this connection uses");
        }
        channel.send(Wire.format("SLEAPRTC_AUTH_PROOF", hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, input("client"))))));
        const verdict = await next();
        if (verdict.type !== "SLEAPRTC_AUTH_OK") throw failed("the worker refused: " + (verdict.args[1] || verdict.args[0] || verdict.type));
      } finally {
        channel.removeEventListener("message", listener);
      }
    },
  };

  // ---- The track package: a stored (uncompressed) zip streamed straight from the chosen files -------------------

  // CRC-32 (zip's), slicing by 8: eight tables, eight bytes a step; ~2x the byte-at-a-time loop in V8.
  const CRC_TABLES = (() => {
    const tables = new Uint32Array(256 * 8);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      tables[n] = c >>> 0;
    }
    for (let n = 0; n < 256; n++)
      for (let k = 1; k < 8; k++) tables[k * 256 + n] = (tables[(k - 1) * 256 + n] >>> 8) ^ tables[tables[(k - 1) * 256 + n] & 0xff];
    return tables;
  })();

  function crc32(crc, bytes) {
    const t = CRC_TABLES;
    let c = ~crc, i = 0;
    for (const end = bytes.length - 7; i < end; i += 8) {
      const low = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ c;
      c = t[1792 + (low & 0xff)] ^ t[1536 + ((low >>> 8) & 0xff)] ^ t[1280 + ((low >>> 16) & 0xff)] ^ t[1024 + (low >>> 24)]
        ^ t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
    }
    for (; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  }

  // A name the worker's script parser and classic peers can read: no path, no ':' (FILE_META splits on it), no quote.
  const safeName = (name) => String(name).split(/[\\/]/).pop().replace(/[:"]/g, "_") || "data";
  const stem = (name) => (name.lastIndexOf(".") > 0 ? name.slice(0, name.lastIndexOf(".")) : name);
  const quote = (value) => (/\s/.test(value) ? '"' + value + '"' : value);

  /** The track-script.sh our client writes (TrackPackage.Script): one sleap-nn track command, paths relative to the package. */
  function trackScript(dataName, modelNames) {
    const lines = ["sleap-nn track", "--data_path " + quote(dataName)];
    for (const model of modelNames) lines.push("--model_paths " + quote("models/" + model));
    lines.push("-o " + quote(stem(dataName) + ".predictions.slp"));
    return "#!/bin/bash\n" + lines.join(" \\\n  ") + "\n";
  }

  /**
   * Groups the files of a chosen folder into model folders: every folder that directly holds a training_config.*
   * is one model (a parent of several models may be chosen); without any, the chosen folder is the model. Files
   * picked one by one (no folder) make one model named "model".
   */
  function modelFolders(files) {
    const entries = [...files].map((file) => ({ file, path: file.webkitRelativePath || "model/" + file.name }));
    const dirOf = (path) => path.slice(0, path.lastIndexOf("/"));
    let roots = [...new Set(entries.filter((e) => /^training_config\.(json|ya?ml)$/i.test(e.path.split("/").pop())).map((e) => dirOf(e.path)))];
    roots = roots.filter((r) => !roots.some((other) => other !== r && r.startsWith(other + "/")));
    if (roots.length === 0) roots = [...new Set(entries.map((e) => e.path.split("/")[0]))];
    const taken = new Set();
    return roots.sort().map((root) => {
      let name = safeName(root.split("/").pop() || "model");
      for (let i = 2; taken.has(name); i++) name = safeName(root.split("/").pop()) + "_" + i;
      taken.add(name);
      const inside = entries.filter((e) => e.path.startsWith(root + "/"));
      return { name, files: inside.map((e) => ({ file: e.file, relative: e.path.slice(root.length + 1) })) };
    });
  }

  function dosDateTime(date) {
    const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
    const day = ((Math.max(1980, date.getFullYear()) - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
    return { time, day };
  }

  /**
   * The package as a plan of entries whose total size is known before a byte is read (FILE_META needs it), then
   * streamed: local header, the file's bytes (CRC computed on the way), a data descriptor; central directory last.
   */
  class TrackPackage {
    constructor(dataFile, models) {
      this.dataName = safeName(dataFile.name);
      this.entries = [];
      const encoder = new TextEncoder();
      const add = (name, source) => this.entries.push({ name, nameBytes: encoder.encode(name), source, size: source ? source.size : 0 });
      add(PACKAGE_FOLDER + "/" + this.dataName, dataFile);
      for (const model of models) {
        add(PACKAGE_FOLDER + "/models/" + model.name + "/", null);
        for (const f of model.files) add(PACKAGE_FOLDER + "/models/" + model.name + "/" + f.relative, f.file);
      }
      add(PACKAGE_FOLDER + "/track-script.sh", new Blob([trackScript(this.dataName, models.map((m) => m.name))]));
      const headers = this.entries.reduce((sum, e) => sum + 30 + e.nameBytes.length + (e.source ? 16 : 0) + 46 + e.nameBytes.length, 0);
      this.size = headers + this.entries.reduce((sum, e) => sum + e.size, 0) + 22;
      if (this.size > ZIP_LIMIT || this.entries.length > 0xffff)
        throw new Error("The request is larger than 4 GB; send it with Submit-SleapInference instead.");
    }

    /** Yields the zip's bytes in pieces of at most CHUNK_BYTES. */
    async *bytes() {
      const { time, day } = dosDateTime(new Date());
      const central = [];
      let offset = 0;
      for (const entry of this.entries) {
        const isFile = !!entry.source;
        const flags = 0x0800 | (isFile ? 0x0008 : 0);   // UTF-8 names; sizes and CRC follow the data
        const local = new DataView(new ArrayBuffer(30 + entry.nameBytes.length));
        local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true); local.setUint16(6, flags, true);
        local.setUint16(8, 0, true); local.setUint16(10, time, true); local.setUint16(12, day, true);
        local.setUint16(26, entry.nameBytes.length, true);
        new Uint8Array(local.buffer).set(entry.nameBytes, 30);
        yield new Uint8Array(local.buffer);
        let crc = 0;
        if (isFile) {
          // blob.stream() reads several times faster than slice().arrayBuffer() a MiB at a time (Chromium 156).
          const reader = entry.source.stream().getReader();
          let read = 0;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            crc = crc32(crc, value);
            read += value.length;
            for (let i = 0; i < value.length; i += CHUNK_BYTES) yield value.subarray(i, Math.min(i + CHUNK_BYTES, value.length));
          }
          if (read !== entry.size) throw new Error("The file " + entry.name.split("/").pop() + " changed while it was being sent.");
          const descriptor = new DataView(new ArrayBuffer(16));
          descriptor.setUint32(0, 0x08074b50, true); descriptor.setUint32(4, crc, true);
          descriptor.setUint32(8, entry.size, true); descriptor.setUint32(12, entry.size, true);
          yield new Uint8Array(descriptor.buffer);
        }
        central.push({ entry, flags, crc, offset });
        offset += 30 + entry.nameBytes.length + entry.size + (isFile ? 16 : 0);
      }
      const directoryStart = offset;
      for (const { entry, flags, crc, offset: at } of central) {
        const header = new DataView(new ArrayBuffer(46 + entry.nameBytes.length));
        header.setUint32(0, 0x02014b50, true); header.setUint16(4, 0x0314, true); header.setUint16(6, 20, true);
        header.setUint16(8, flags, true); header.setUint16(10, 0, true); header.setUint16(12, time, true); header.setUint16(14, day, true);
        header.setUint32(16, crc, true); header.setUint32(20, entry.size, true); header.setUint32(24, entry.size, true);
        header.setUint16(28, entry.nameBytes.length, true);
        // Unix permissions (rw-r--r-- files, rwxr-xr-x folders) and the MS-DOS folder bit.
        header.setUint32(38, entry.source ? (0o100644 << 16) >>> 0 : ((0o40755 << 16) | 0x10) >>> 0, true);
        header.setUint32(42, at, true);
        new Uint8Array(header.buffer).set(entry.nameBytes, 46);
        yield new Uint8Array(header.buffer);
        offset += header.byteLength;
      }
      const end = new DataView(new ArrayBuffer(22));
      end.setUint32(0, 0x06054b50, true); end.setUint16(8, central.length, true); end.setUint16(10, central.length, true);
      end.setUint32(12, offset - directoryStart, true); end.setUint32(16, directoryStart, true);
      yield new Uint8Array(end.buffer);
    }
  }

  // ---- Signaling: sign in, register as a client of the room, relay offer and answer ----------------------------

  class Signaling {
    /** Signs in anonymously and registers in the room as a client peer, as our client does (ClientRoomConnection). */
    static async open(roomId, token) {
      const response = await fetch("/anonymous-signin", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: "{}", cache: "no-store", credentials: "omit",
      });
      if (!response.ok) throw new Error("The signaling server refused the sign-in (" + response.status + ").");
      const signIn = await response.json();
      const signaling = new Signaling(signIn.username);
      await signaling.connect();
      const registered = await signaling.request({
        type: "register", peer_id: signIn.username, room_id: roomId, token, id_token: signIn.id_token, role: "client",
        metadata: { tags: ["sleap-rtc", "browser-client"], properties: { sleap_version: "unknown", platform: "browser", user_id: "browser" } },
      }, (m) => m.type === "registered_auth");
      signaling.iceServers = Array.isArray(registered.ice_servers) ? registered.ice_servers : [];
      return signaling;
    }

    constructor(peerId) {
      this.peerId = peerId;
      this.waiters = new Set();
      this.closed = false;
    }

    connect() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      this.socket = new WebSocket(scheme + location.host + "/");
      this.socket.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        for (const waiter of [...this.waiters]) waiter(message);
      };
      this.socket.onclose = () => {
        this.closed = true;
        for (const waiter of [...this.waiters]) waiter(null);
      };
      return new Promise((resolve, reject) => {
        this.socket.onopen = resolve;
        this.socket.onerror = () => reject(new Error("The signaling server cannot be reached."));
      });
    }

    /** Sends a message and resolves with the first answer that <paramref name="matches"/>; an error answer rejects. */
    request(message, matches, timeoutMs = 10000, isError = (m) => m.type === "error" || (m.error && !m.type)) {
      return new Promise((resolve, reject) => {
        const finish = (fn, value) => { clearTimeout(timer); this.waiters.delete(waiter); fn(value); };
        const waiter = (m) => {
          if (m === null) finish(reject, new Error("The connection to the signaling server closed."));
          else if (matches(m)) finish(resolve, m);
          else if (isError(m)) finish(reject, Object.assign(new Error(m.message || m.error || m.reason || "refused"), { code: m.code || m.reason }));
        };
        const timer = setTimeout(() => finish(reject, new Error("The signaling server did not answer in time.")), timeoutMs);
        this.waiters.add(waiter);
        this.socket.send(JSON.stringify(message));
      });
    }

    close() {
      this.closed = true;
      try { this.socket.close(); } catch (e) { /* already closed */ }
    }
  }

  // ---- One request: connect, upload, follow, download ---------------------------------------------------------

  class InferenceRequest {
    /** <paramref name="prepared"/>: a signaling connection opened when the files were picked (may be null or failed). */
    constructor(target, dataFile, models, view, prepared) {
      this.target = target;          // { peerId, extensions, space }
      this.prepared = prepared;
      this.dataFile = dataFile;
      this.models = models;
      this.view = view;
      this.finished = false;
      this.lastHeard = performance.now();
      this.received = null;
      this.timers = [];
    }

    async run() {
      const started = performance.now();
      try {
        const pkg = new TrackPackage(this.dataFile, this.models);
        this.view.state("connecting", "connecting…");
        this.marks = [["start", started]];
        const ready = this.prepared && await this.prepared.catch(() => null);
        this.signaling = ready && !ready.closed ? ready : await Signaling.open(room.id, room.token);
        this.mark("registered");
        if (this.finished) return this.release();
        const channel = await this.connect();
        this.mark("open");
        if (this.target.channelAuth) {
          const why = ChannelAuth.unavailableReason(this.pc);
          if (why === null) {
            await ChannelAuth.prove(channel, this.pc, room.token);
            this.mark("authenticated");
            this.view.node.dataset.channelAuth = "verified";
          } else {
            // Sent the classic way: the worker serves it unverified, unless it requires the proof (-RequireChannelAuth).
            this.target.extensions = false;
            this.view.node.dataset.channelAuth = "unverified";
            this.view.log("The channel is not authenticated (" + why + "); sending as a classic client.");
          }
        }
        this.view.connected(performance.now() - started, this.marks);
        await this.upload(channel, pkg);
      } catch (err) {
        this.fail(err && err.message ? err.message : String(err));
      }
    }

    async connect() {
      const pc = new RTCPeerConnection({ iceServers: this.signaling.iceServers });
      this.pc = pc;
      const channel = pc.createDataChannel(CHANNEL_LABEL, { ordered: true });
      channel.binaryType = "arraybuffer";
      channel.bufferedAmountLowThreshold = LOW_WATER;
      this.channel = channel;
      channel.onmessage = (event) => this.onMessage(event.data);
      channel.onclose = () => this.onClosed("the data channel closed");
      pc.onconnectionstatechange = () => { if (pc.connectionState === "failed") this.onClosed("the peer-to-peer connection failed"); };

      await pc.setLocalDescription(await pc.createOffer());
      this.mark("offer");
      // Our worker reads candidates from the offer (no trickle), but it needs none of the browser's: browsers hide
      // their host addresses behind mDNS names it cannot resolve, and it learns the real one from the browser's first
      // connectivity check (a peer-reflexive candidate). Only a server-reflexive address (from the server's STUN) is
      // worth waiting for, and not for long.
      const stun = this.signaling.iceServers.length > 0;
      await new Promise((resolve) => {
        if (!stun || pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
        pc.addEventListener("icecandidate", (event) => { if (event.candidate && / typ srflx/.test(event.candidate.candidate)) setTimeout(resolve, 20); });
        setTimeout(resolve, GATHER_CAP_MS);
      });
      this.mark("gathered");
      const answer = await this.signaling.request(
        { type: "offer", sender: this.signaling.peerId, target: this.target.peerId, sdp: pc.localDescription.sdp },
        (m) => m.type === "answer" && m.sender === this.target.peerId, CONNECT_TIMEOUT_MS,
        (m) => m.type === "error" && (m.sender === this.target.peerId || m.in_reply_to === "offer" || m.target_peer_id === this.target.peerId))
        .catch((err) => {
          if (err.code === "peer_not_found") throw new Error(this.target.space ? "The space is offline: no worker serves it." : "The worker has left the room.");
          if (err.code === "worker_busy") throw new Error("The worker is busy with another job; try again when it is available.");
          throw err;
        });
      this.mark("answered");
      await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
      await new Promise((resolve, reject) => {
        if (channel.readyState === "open") return resolve();
        const timer = setTimeout(() => reject(new Error("No connection to the worker within " + CONNECT_TIMEOUT_MS / 1000 + " s (the worker answered; the peer-to-peer path failed).")), CONNECT_TIMEOUT_MS);
        channel.addEventListener("open", () => { clearTimeout(timer); resolve(); });
        channel.addEventListener("close", () => { clearTimeout(timer); reject(new Error("The worker closed the connection.")); });
      });
      return channel;
    }

    /** Notes when a connection step ended, for the request's connect-time breakdown. */
    mark(step) {
      this.marks.push([step, performance.now()]);
    }

    async upload(channel, pkg) {
      this.sendLiveness(channel);
      if (this.target.extensions) channel.send(Wire.format("SLEAPRTC_HELLO", JSON.stringify({ version: 1, features: ["progress", "cancel", "heartbeat"] })));
      channel.send(Wire.format("PACKAGE_TYPE", "track"));
      channel.send(Wire.format("OUTPUT_DIR", "."));
      channel.send(Wire.format("FILE_META", PACKAGE_NAME + ":" + pkg.size + ":False"));
      const chunkLimit = Math.min(CHUNK_BYTES, (this.pc.sctp && this.pc.sctp.maxMessageSize) || CHUNK_BYTES);
      const clock = performance.now();
      let sent = 0, lastShown = 0;
      this.view.state("uploading", "uploading…");
      for await (const piece of pkg.bytes()) {
        for (let i = 0; i < piece.length; i += chunkLimit) {
          if (this.finished) return;
          if (channel.bufferedAmount > HIGH_WATER) await this.drained(channel);
          const frame = piece.subarray(i, Math.min(i + chunkLimit, piece.length));
          channel.send(frame);
          sent += frame.length;
        }
        if (performance.now() - lastShown > 100 || sent === pkg.size) {
          lastShown = performance.now();
          this.view.uploaded(sent, pkg.size, sent / Math.max((performance.now() - clock) / 1000, 1e-3));
        }
      }
      channel.send("END_OF_FILE");
      await this.drained(channel, 0);
      this.uploadDone = true;
      const seconds = Math.max((performance.now() - clock) / 1000, 1e-3);
      this.view.uploaded(pkg.size, pkg.size, pkg.size / seconds, true);
      if (!this.running) this.view.state("queued", this.target.space ? "uploaded; waiting for its turn in the space" : "uploaded; waiting for the worker");
    }

    /** Resolves once the channel's buffer is down to <paramref name="level"/> (LOW_WATER unless told). */
    drained(channel, level = LOW_WATER) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (this.finished || channel.readyState !== "open") { clearInterval(poll); reject(new Error("The connection to the worker closed during the upload.")); }
          else if (channel.bufferedAmount <= level) { clearInterval(poll); resolve(); }
        };
        // bufferedamountlow fires at the threshold only; a short poll covers the final drain to zero.
        const poll = setInterval(check, level === 0 ? 5 : 50);
        channel.addEventListener("bufferedamountlow", check, { once: true });
        check();
      });
    }

    /** Classic KEEP_ALIVE every 15 s; after an agreed heartbeat, SLEAPRTC_HEARTBEAT every 2 s. Silence means the worker is gone. */
    sendLiveness(channel) {
      let lastSent = performance.now();
      this.timers.push(setInterval(() => {
        if (channel.readyState !== "open") return;
        const now = performance.now();
        if (now - lastSent >= (this.heartbeat ? HEARTBEAT_MS : KEEP_ALIVE_MS)) {
          channel.send(this.heartbeat ? "SLEAPRTC_HEARTBEAT" : KEEP_ALIVE);
          lastSent = now;
        }
        // A classic worker may stay silent while it receives; a worker that agreed on heartbeats never may.
        const limit = this.heartbeat ? HEARTBEAT_SILENCE_MS : CLASSIC_SILENCE_MS;
        if ((this.heartbeat || this.uploadDone) && now - this.lastHeard > limit)
          this.fail("The worker stopped answering (nothing for " + Math.round(limit / 1000) + " s).");
      }, 500));
    }

    onMessage(data) {
      this.lastHeard = performance.now();
      if (this.finished) return;
      if (typeof data === "string" && data.startsWith("SLEAPRTC_AUTH")) return; // ChannelAuth.prove reads these
      if (typeof data !== "string") return this.onBinary(new Uint8Array(data));
      if (data.startsWith("TRACK_LOG:")) {
        const line = data.slice("TRACK_LOG:".length);
        if (line.startsWith("\r")) this.view.trackerProgress(line.slice(1).trim());
        else { this.view.log(line.replace(/\r?\n$/, "")); this.view.trackerProgress(line.trim()); }
        return;
      }
      const { type, args } = Wire.parse(data);
      switch (type) {
        case "SLEAPRTC_WELCOME": {
          let welcome = {};
          try { welcome = JSON.parse(args[0]); } catch (e) { /* not JSON */ }
          if (welcome.job_id) this.view.node.dataset.jobId = welcome.job_id;
          this.heartbeat = Array.isArray(welcome.features) && welcome.features.includes("heartbeat");
          return;
        }
        case "SLEAPRTC_HEARTBEAT": case "SLEAPRTC_PROGRESS": case "INFERENCE_JOB_END":
          return;
        case "INFERENCE_START":
        case "INFERENCE_JOB_START":
          this.running = true;
          return this.view.state("running", "running sleap-nn track");
        case "INFERENCE_JOB_ERROR":
          return this.view.log("Inference failed (exit code " + (args[1] || "?") + ").");
        case "FILE_META": {
          const match = /^(.+?):(\d+):(.*)$/.exec(args[0] || "");
          if (!match) return this.fail("The worker's FILE_META could not be read.");
          this.received = { name: safeName(match[1]), size: Number(match[2]), chunks: [], bytes: 0, sha256: null };
          return this.view.state("receiving", "receiving predictions");
        }
        case "SLEAPRTC_SHA256":
          if (this.received) this.received.sha256 = (args[0] || "").trim().toLowerCase();
          return;
        case "END_OF_FILE":
          return this.completeFile();
        case "INFERENCE_JOBS_DONE":
          // The predictions came first; their check may still be running (completeFile then finishes the request).
          this.jobsDone = true;
          if (this.result) this.succeed();
          else if (!this.received || !this.received.done) this.fail("The worker finished without sending a predictions file.");
          return;
        case "SLEAPRTC_ERROR":
          return this.fail(args[1] || args[0] || "The worker reported an error.", args[0]);
        case "INFERENCE_ERROR":
          return this.fail(args.join(": ") || "Inference failed on the worker.");
        case "SLEAPRTC_CANCELLED":
          return this.end("cancelled", "cancelled");
        default:
          this.view.log(data.replace(/\r?\n$/, ""));
      }
    }

    onBinary(bytes) {
      if (Wire.isKeepAlive(bytes) || !this.received || this.received.done) return;
      this.received.chunks.push(bytes);
      this.received.bytes += bytes.byteLength;
      const now = performance.now();
      if (now - (this.received.shownAt || 0) > 100) {
        this.received.shownAt = now;
        this.view.downloading(this.received.bytes, this.received.size);
      }
    }

    async completeFile() {
      const file = this.received;
      if (!file || file.done) return;
      file.done = true;
      const blob = new Blob(file.chunks, { type: "application/octet-stream" });
      file.chunks = [];
      if (blob.size !== file.size) return this.fail("The predictions arrived incomplete (" + blob.size + " of " + file.size + " bytes).");
      if (file.sha256) {
        const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()))].map((b) => b.toString(16).padStart(2, "0")).join("");
        if (digest !== file.sha256) return this.fail("The predictions arrived corrupted (SHA-256 mismatch); run the request again.");
      }
      this.result = { name: file.name, blob };
      if (this.jobsDone) this.succeed();
    }

    succeed() {
      if (this.finished) return;
      this.view.download(this.result.name, this.result.blob);
      this.end("done", "done");
    }

    onClosed(reason) {
      if (!this.finished) this.fail("The worker is gone: " + reason + ".");
    }

    fail(message, code) {
      if (this.finished) return;
      this.view.log("ERROR: " + message);
      this.end("failed", code === "request_timeout" ? "timed out: " + message : message);
    }

    cancel() {
      if (this.finished) return;
      try { if (this.target.extensions && this.channel && this.channel.readyState === "open") this.channel.send("SLEAPRTC_CANCEL"); } catch (e) { /* closing anyway */ }
      this.end("cancelled", "cancelled");
    }

    end(state, text) {
      if (this.finished) return;
      this.finished = true;
      this.view.state(state, text);
      for (const timer of this.timers) clearInterval(timer);
      // Let a cancel message leave before the connection goes.
      setTimeout(() => this.release(), state === "cancelled" ? 200 : 0);
    }

    /** Closes whatever this request holds (called again by run() when it ended while a step was under way). */
    release() {
      try { if (this.channel) this.channel.close(); } catch (e) { /* gone */ }
      try { if (this.pc) this.pc.close(); } catch (e) { /* gone */ }
      if (this.signaling) this.signaling.close();
      else if (this.prepared) this.prepared.then((s) => s.close(), () => {});
    }
  }

  // ---- The panel: one per space (by name, so it outlives the worker serving it) and one per training worker ----

  const make = (tag, className, textValue) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (textValue != null) node.textContent = textValue;
    return node;
  };

  function formatBytes(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return (bytes / 1024).toFixed(1) + " kB";
    return bytes + " B";
  }

  class RequestView {
    constructor(list, name) {
      this.node = make("li", "request");
      const head = make("div", "request-head");
      this.status = make("span", "request-status");
      this.cancelButton = make("button", "request-cancel", "Cancel");
      this.cancelButton.type = "button";
      head.append(make("span", "request-name", name), this.status, this.cancelButton);
      this.progress = make("progress", "request-progress");
      this.progress.max = 1;
      this.progress.value = 0;
      this.figures = make("div", "request-figures");
      this.logNode = make("pre", "request-log");
      this.link = make("a", "request-download");
      this.link.hidden = true;
      this.node.append(head, this.progress, this.figures, this.logNode, this.link);
      list.prepend(this.node);
      this.lines = [];
      this.createdAt = performance.now();
    }

    state(name, textValue) {
      this.node.dataset.state = name;
      this.status.textContent = textValue;
      this.cancelButton.hidden = ["done", "failed", "cancelled"].includes(name);
      if (name === "running" || name === "queued") { this.progress.removeAttribute("value"); this.figures.textContent = this.connectText || ""; }
      if (name === "done") {
        this.progress.value = 1;
        this.figures.textContent = (this.connectText ? this.connectText + " · " : "") + "finished "
          + ((performance.now() - this.createdAt) / 1000).toFixed(1) + " s after submit";
      }
    }

    connected(ms, marks) {
      this.node.dataset.connectMs = ms.toFixed(0);
      // "registered 12 · offer 3 · gathered 40 · answered 20 · open 35 · authenticated 4" (ms per step), for the
      // curious and the tests; the last mark is where the connection counts as made.
      this.figures.title = marks.slice(1).map(([step, at], i) => step + " " + (at - marks[i][1]).toFixed(0)).join(" · ");
      this.node.dataset.connectSteps = this.figures.title;
      this.connectText = "connected peer to peer in " + ms.toFixed(0) + " ms";
      this.figures.textContent = this.connectText;
    }

    uploaded(done, total, bytesPerSecond, finished) {
      this.progress.value = total ? done / total : 1;
      const rate = bytesPerSecond / 1048576;
      this.figures.textContent = "upload " + formatBytes(done) + " of " + formatBytes(total) + " · " + rate.toFixed(1) + " MB/s";
      if (finished) { this.node.dataset.uploadBytes = String(total); this.node.dataset.uploadMbps = rate.toFixed(2); }
    }

    downloading(done, total) {
      this.progress.value = total ? Math.min(1, done / total) : 0;
      this.figures.textContent = "predictions " + formatBytes(done) + " of " + formatBytes(total);
    }

    trackerProgress(line) {
      const frames = /(\d+)\s*\/\s*(\d+)\s*frames?(?:\D+([\d.]+)\s*FPS)?/i.exec(line);
      if (!frames) return;
      const done = Number(frames[1]), total = Number(frames[2]);
      this.progress.value = total ? Math.min(1, done / total) : 0;
      this.figures.textContent = "frames " + done + " of " + total + (frames[3] ? " · " + Number(frames[3]).toFixed(1) + " FPS" : "");
    }

    log(line) {
      this.lines.push(line);
      if (this.lines.length > LOG_LINES) this.lines.shift();
      this.logNode.textContent = this.lines.join("\n");
      this.logNode.scrollTop = this.logNode.scrollHeight;
    }

    download(name, blob) {
      this.link.href = URL.createObjectURL(blob);
      this.link.download = name;
      this.link.textContent = "Download " + name + " (" + formatBytes(blob.size) + ")";
      this.link.hidden = false;
    }
  }

  class Panel {
    /** kind: "space" (keyed by name; targets whichever worker serves it now) or "worker" (one peer). */
    constructor(kind, key) {
      this.kind = kind;
      this.key = key;
      this.requests = new Set();
      this.node = make("article", "submit-panel");
      this.node.dataset.kind = kind;
      if (kind === "space") this.node.dataset.space = key; else this.node.dataset.peerId = key;
      const head = make("header", "panel-head");
      this.title = make("h3", "panel-name", kind === "space" ? "space " + key : key);
      this.stateNode = make("span", "panel-state");
      head.append(this.title, this.stateNode);
      this.targetNode = make("p", "panel-target");
      this.form = make("form", "submit-form");
      this.dataInput = make("input", "data-input");
      this.dataInput.type = "file";
      const dataLabel = make("label", null, "Data ");
      dataLabel.append(this.dataInput);
      this.form.append(dataLabel);
      if (kind === "worker") {
        this.modelInput = make("input", "model-input");
        this.modelInput.type = "file";
        this.modelInput.multiple = true;
        this.modelInput.webkitdirectory = true;
        const modelLabel = make("label", null, "Model folder ");
        modelLabel.append(this.modelInput);
        this.form.append(modelLabel);
      }
      this.button = make("button", "submit-button", "Run inference");
      this.button.type = "submit";
      this.form.append(this.button);
      this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
      // Picking files is the moment to sign in and register, so the request itself only has to connect.
      this.form.addEventListener("change", () => this.prepare());
      this.list = make("ol", "requests");
      this.node.append(head, this.targetNode, this.form, this.list);
    }

    /** The worker this panel sends to now, or null (space offline / worker gone or not available). */
    update(worker) {
      this.worker = worker;
      let state, textValue, usable;
      if (!worker) {
        state = "offline";
        textValue = this.kind === "space" ? "offline — no worker serves this space" : "offline — the worker left";
        usable = false;
      } else if (this.kind === "space") {
        const queue = worker.space.queue_length || 0;
        state = worker.space.state === "busy" ? "busy" : "ready";
        textValue = state + " · queue " + queue;
        usable = true;
      } else {
        state = String(worker.status || "unknown");
        textValue = state;
        usable = state === "available";
      }
      this.node.dataset.state = state;
      this.stateNode.textContent = textValue;
      this.targetNode.textContent = worker ? "worker " + (worker.name || worker.peer_id) + (worker.gpu_model ? " · " + worker.gpu_model : "") : "";
      this.button.disabled = !usable;
      // Requests in flight to a worker that left fail now, not when the connection times out.
      for (const request of this.requests) {
        if (!request.finished && (!worker || worker.peer_id !== request.target.peerId))
          request.fail(this.kind === "space" ? "The space is offline: the worker serving it stopped." : "The worker left the room.");
      }
    }

    /** Opens a signaling connection for the next request ahead of time; closed again if no request takes it. */
    prepare() {
      if (this.spare || !room.token || !this.worker) return;
      const spare = { signaling: Signaling.open(room.id, room.token) };
      spare.signaling.catch(() => { /* the request opens its own */ });
      spare.timer = setTimeout(() => {
        if (this.spare !== spare) return;
        this.spare = null;
        spare.signaling.then((s) => s.close(), () => {});
      }, SPARE_MS);
      this.spare = spare;
    }

    takeSpare() {
      const spare = this.spare;
      this.spare = null;
      if (!spare) return null;
      clearTimeout(spare.timer);
      return spare.signaling;
    }

    submit() {
      const data = this.dataInput.files && this.dataInput.files[0];
      if (!data) { this.dataInput.focus(); return; }
      let models = [];
      if (this.kind === "worker") {
        models = modelFolders(this.modelInput.files || []);
        if (models.length === 0) { this.modelInput.focus(); return; }
      }
      const worker = this.worker;
      const view = new RequestView(this.list, data.name);
      const request = new InferenceRequest({
        peerId: worker ? worker.peer_id : null,
        space: this.kind === "space" ? this.key : null,
        extensions: !!worker && Number((worker.properties || {}).sleaprtc_ext) >= 1,
        channelAuth: !!worker && Number((worker.properties || {}).sleaprtc_ext) >= 2,
      }, data, models, view, this.takeSpare());
      view.cancelButton.addEventListener("click", () => request.cancel());
      this.requests.add(request);
      if (!worker) return request.fail(this.kind === "space" ? "The space is offline: no worker serves it." : "The worker left the room.");
      request.run();
    }

    get busy() {
      return [...this.requests].some((r) => !r.finished);
    }
  }

  function render() {
    const section = document.getElementById("inference");
    if (!section) return;
    if (!room.token) {
      section.hidden = true;
      return;
    }
    const spaces = new Map(), workers = new Map();
    for (const worker of room.workers) {
      if (worker.space && worker.space.name) spaces.set(worker.space.name, worker);
      else if (worker.role === "worker") workers.set(worker.peer_id, worker);
    }
    for (const name of spaces.keys()) if (!panels.has("space:" + name)) panels.set("space:" + name, new Panel("space", name));
    for (const peerId of workers.keys()) if (!panels.has("worker:" + peerId)) panels.set("worker:" + peerId, new Panel("worker", peerId));

    let list = section.querySelector(".panels");
    if (!list) {
      section.append(make("h2", "inference-title", "Run inference"), make("p", "inference-note",
        "Files go straight from this browser to the worker over an encrypted peer-to-peer channel; the server only introduces the two."));
      list = section.appendChild(make("div", "panels"));
    }
    const ordered = [...panels.entries()].sort(([a], [b]) => a.localeCompare(b));
    for (const [key, panel] of ordered) {
      const worker = panel.kind === "space" ? spaces.get(panel.key) : workers.get(panel.key);
      // A worker that left takes its panel along unless a request there still matters; a space's panel stays.
      if (!worker && panel.kind === "worker" && panel.requests.size === 0) {
        panel.node.remove();
        panels.delete(key);
        continue;
      }
      panel.update(worker || null);
      list.append(panel.node);
    }
    section.hidden = panels.size === 0;
  }

  document.addEventListener("sleaprtc:room", (event) => {
    const detail = event.detail || {};
    if (detail.roomId !== room.id) {
      for (const panel of panels.values()) panel.node.remove();
      panels.clear();
    }
    room.id = detail.roomId || null;
    room.token = detail.token || null;
    room.workers = Array.isArray(detail.workers) ? detail.workers : [];
    render();
  });
})();
