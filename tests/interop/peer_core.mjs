// Engine-independent fixture logic shared by peer.mjs (node engines) and chromium_page.html (the browser).
// A test drives one FixturePeer with JSON command lines ({"cmd": ...}) and reads JSON event lines
// ({"ev": ...}); the wire behaviour (offer/answer, one ordered reliable channel, back-pressure) is the
// same for every engine so a failure points at the engine pair, not at the fixture.
//
// Commands: start (offerer: create channel + complete offer), sdp {type, sdp}, send {bytes, chunk, source,
// hash, high, low}, expect {bytes, hash}, sendText {count, prefix}, expectText {count, prefix},
// echo {on}, close, exit.
// Events: ready, sdp, open, sent, expecting, received, textSent, textReceived, closed, pcClosed, error.

const DEFAULT_HIGH_WATER = 1 << 20;
const DEFAULT_LOW_WATER = 256 << 10;
const GATHER_TIMEOUT_MS = 15000;
const CLOSE_TIMEOUT_MS = 10000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class FixturePeer {
  // env: { RTCPeerConnection, config, emit(obj), createHasher() -> {update(u8), digest(): Promise<hex>},
  //        randomFill(u8), now(), filterSdp(sdp), toSendable(u8), exit(code) }
  constructor(env) {
    this.env = env;
    this.pc = null;
    this.dc = null;
    this.echo = false;
    this.closingLocally = false;
    this.resetReceive(true);
    this.texts = [];
    this.textTarget = null;
  }

  emit(event) { this.env.emit(event); }

  async handle(command) {
    try {
      switch (command.cmd) {
        case 'start': return await this.startOffer(command);
        case 'sdp':
          return command.type === 'offer' ? await this.acceptOffer(command.sdp) : await this.acceptAnswer(command.sdp);
        case 'send': return await this.sendBytes(command);
        case 'expect': return await this.expectBytes(command);
        case 'sendText': return await this.sendTexts(command);
        case 'expectText':
          this.textTarget = { count: command.count, prefix: command.prefix ?? 'msg' };
          return this.checkTexts();
        case 'echo': this.echo = !!command.on; return this.emit({ ev: 'echo', on: this.echo });
        case 'close': return await this.close();
        case 'exit': return this.exit();
        default: throw new Error(`unknown command ${command.cmd}`);
      }
    } catch (error) {
      this.emit({ ev: 'error', cmd: command.cmd, message: String(error?.stack ?? error) });
    }
  }

  newPeerConnection() {
    if (this.pc) { try { this.pc.close(); } catch { /* replaced by a new session */ } }
    this.dc = null;
    this.closingLocally = false;
    this.resetReceive(true);
    this.texts = [];
    this.t0 = this.env.now();
    this.pc = new this.env.RTCPeerConnection(this.env.config);
    return this.pc;
  }

  async startOffer(command) {
    const pc = this.newPeerConnection();
    const channel = pc.createDataChannel(command.label ?? 'data');
    this.attach(channel);
    await pc.setLocalDescription(await pc.createOffer());
    await this.gathered(pc);
    this.emit({ ev: 'sdp', type: 'offer', sdp: this.env.filterSdp(pc.localDescription.sdp) });
  }

  async acceptOffer(sdp) {
    const pc = this.newPeerConnection();
    pc.ondatachannel = (event) => this.attach(event.channel ?? event);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await this.gathered(pc);
    this.emit({ ev: 'sdp', type: 'answer', sdp: this.env.filterSdp(pc.localDescription.sdp) });
  }

  async acceptAnswer(sdp) {
    if (!this.pc) throw new Error('answer without an offer');
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  // Non-trickle: the SDP is only handed out once every candidate is in it (classic peers need that).
  async gathered(pc) {
    const deadline = this.env.now() + GATHER_TIMEOUT_MS;
    while (pc.iceGatheringState !== 'complete') {
      if (this.env.now() > deadline) throw new Error(`ICE gathering incomplete after ${GATHER_TIMEOUT_MS} ms`);
      await sleep(2);
    }
  }

  attach(channel) {
    try { channel.binaryType = 'arraybuffer'; } catch { /* werift has no binaryType: it delivers Buffers */ }
    const opened = () => {
      if (this.dc === channel) return;
      this.dc = channel;
      this.emit({ ev: 'open', label: channel.label, id: channel.id, ms: Math.round(this.env.now() - this.t0) });
    };
    channel.onopen = opened;
    channel.onmessage = (event) => this.onMessage(event.data);
    channel.onclose = () => {
      this.emit({ ev: 'closed', by: this.closingLocally ? 'local' : 'remote' });
      if (this.closeWaiter) this.closeWaiter();
    };
    if (channel.readyState === 'open') opened();
  }

  resetReceive(clearTarget) {
    this.rx = { bytes: 0, messages: 0, first: 0, last: 0, hasher: null };
    if (clearTarget) this.byteTarget = null;
  }

  onMessage(data) {
    if (typeof data === 'string') {
      if (this.echo) this.dc.send(data);
      this.texts.push(data);
      this.checkTexts();
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (this.echo) this.dc.send(this.env.toSendable(bytes.slice()));
    const rx = this.rx;
    const now = this.env.now();
    if (rx.messages === 0) {
      rx.first = now;
      rx.hasher = this.byteTarget?.hash === false ? null : this.env.createHasher();
    }
    rx.hasher?.update(bytes);
    rx.bytes += bytes.byteLength;
    rx.messages += 1;
    rx.last = now;
    this.checkBytes();
  }

  async expectBytes(command) {
    this.byteTarget = { bytes: command.bytes, hash: command.hash !== false };
    if (this.rx.messages === 0) this.rx.hasher = null;
    this.emit({ ev: 'expecting', bytes: command.bytes });
    this.checkBytes();
  }

  checkBytes() {
    const target = this.byteTarget;
    const rx = this.rx;
    if (!target || rx.bytes < target.bytes) return;
    this.byteTarget = null;
    this.resetReceive(false);
    const ms = rx.last - rx.first;
    const finish = (sha256) => this.emit({
      ev: 'received', bytes: rx.bytes, messages: rx.messages, sha256, ms: Math.round(ms),
      MBps: ms > 0 ? +(rx.bytes / 1e3 / ms).toFixed(2) : null,
    });
    if (rx.hasher) rx.hasher.digest().then(finish); else finish(null);
  }

  checkTexts() {
    const target = this.textTarget;
    if (!target || this.texts.length < target.count) return;
    this.textTarget = null;
    const got = this.texts.splice(0, target.count);
    const firstMismatch = got.findIndex((text, i) => text !== `${target.prefix} ${i}`);
    this.emit({ ev: 'textReceived', count: got.length, inOrder: firstMismatch < 0, firstMismatch,
      sample: firstMismatch < 0 ? null : got[firstMismatch] });
  }

  requireOpen() {
    if (!this.dc || this.dc.readyState !== 'open') throw new Error('data channel is not open');
    return this.dc;
  }

  // Resolves once bufferedAmount <= low. Polls every millisecond because @roamhq/wrtc never fires
  // bufferedamountlow; the event is used too where the engine has it.
  waitLow(channel, low) {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (error) => { if (!done) { done = true; error ? reject(error) : resolve(); } };
      try { channel.bufferedAmountLowThreshold = low; channel.onbufferedamountlow = () => finish(); } catch { /* optional */ }
      const tick = () => {
        if (done) return;
        if (channel.readyState !== 'open') return finish(new Error(`channel ${channel.readyState} while sending`));
        if (channel.bufferedAmount <= low) return finish();
        setTimeout(tick, 1);
      };
      tick();
    });
  }

  async drain(channel) {
    while (channel.bufferedAmount > 0) {
      if (channel.readyState !== 'open') throw new Error(`channel ${channel.readyState} before its queue drained`);
      await sleep(1);
    }
  }

  async sendBytes(command) {
    const channel = this.requireOpen();
    const total = command.bytes;
    const chunk = command.chunk ?? 65536;
    const high = command.high ?? DEFAULT_HIGH_WATER;
    const low = command.low ?? DEFAULT_LOW_WATER;
    const hasher = command.hash === false ? null : this.env.createHasher();
    // 'pool' cycles 16 pre-filled random buffers (benchmarks: no RNG cost in the hot loop);
    // 'random' (default) draws fresh random bytes for every message.
    const pool = command.source === 'pool'
      ? Array.from({ length: 16 }, () => { const b = new Uint8Array(chunk); this.env.randomFill(b); return b; })
      : null;
    const started = this.env.now();
    let sent = 0;
    let index = 0;
    while (sent < total) {
      if (channel.bufferedAmount > high) await this.waitLow(channel, low);
      const size = Math.min(chunk, total - sent);
      let message;
      if (pool) {
        message = size === chunk ? pool[index % pool.length] : pool[index % pool.length].subarray(0, size).slice();
      } else {
        message = new Uint8Array(size);
        this.env.randomFill(message);
      }
      hasher?.update(message);
      channel.send(this.env.toSendable(message));
      sent += size;
      index += 1;
    }
    await this.drain(channel);
    const ms = this.env.now() - started;
    this.emit({ ev: 'sent', bytes: sent, messages: index, sha256: hasher ? await hasher.digest() : null,
      ms: Math.round(ms), peakRssMB: this.env.peakRssMB?.() ?? null });
  }

  async sendTexts(command) {
    const channel = this.requireOpen();
    const prefix = command.prefix ?? 'msg';
    for (let i = 0; i < command.count; i++) {
      if (channel.bufferedAmount > DEFAULT_HIGH_WATER) await this.waitLow(channel, DEFAULT_LOW_WATER);
      channel.send(`${prefix} ${i}`);
    }
    await this.drain(channel);
    this.emit({ ev: 'textSent', count: command.count });
  }

  async close() {
    const channel = this.dc;
    if (channel && channel.readyState !== 'closed') {
      this.closingLocally = true;
      const closed = new Promise((resolve) => { this.closeWaiter = resolve; });
      channel.close();
      const timedOut = await Promise.race([closed.then(() => false), sleep(CLOSE_TIMEOUT_MS).then(() => true)]);
      if (timedOut) throw new Error(`channel did not reach closed within ${CLOSE_TIMEOUT_MS} ms`);
    }
    this.pc?.close();
    this.pc = null;
    this.emit({ ev: 'pcClosed' });
  }

  exit() {
    try { this.pc?.close(); } catch { /* exiting anyway */ }
    this.env.exit(0);
  }
}
