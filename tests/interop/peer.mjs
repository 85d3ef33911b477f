// Interop fixture: one WebRTC peer driven by JSON lines on stdin/stdout (see peer_core.mjs).
//   node peer.mjs <wrtc|ndc|werift>
// The role follows from the commands: "start" makes it the offerer, an incoming offer the answerer.
// Environment: PEER_ALLOW  comma-separated address prefixes kept in the SDP's candidates
//                          (default "127.0.0.1,10.99."), so nothing outside loopback/the test namespace is used.
//              PEER_ICE_SERVERS  (wrtc) RTCIceServer list as JSON, e.g. a TURN server with username and credential
//              PEER_ICE_POLICY   (wrtc) iceTransportPolicy, "relay" to gather relayed candidates only
import { createHash, randomFillSync } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { FixturePeer } from './peer_core.mjs';

const engine = process.argv[2];
const allowed = (process.env.PEER_ALLOW ?? '127.0.0.1,10.99.').split(',').filter(Boolean);

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

function filterSdp(sdp) {
  return sdp.split(/\r?\n/).filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    const address = line.split(' ')[4] ?? '';
    return allowed.some((prefix) => address.startsWith(prefix));
  }).join('\r\n');
}

// werift always resolves a STUN server at start; a loopback Binding responder keeps it from waiting
// on DNS (and keeps every packet on this machine).
async function startLoopbackStun() {
  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    if (message.length < 20 || message.readUInt16BE(0) !== 0x0001) return;
    const response = Buffer.alloc(32);
    response.writeUInt16BE(0x0101, 0);
    response.writeUInt16BE(12, 2);
    message.copy(response, 4, 4, 20); // magic cookie + transaction id
    response.writeUInt16BE(0x0020, 20); // XOR-MAPPED-ADDRESS
    response.writeUInt16BE(8, 22);
    response.writeUInt16BE(0x0001, 24);
    response.writeUInt16BE(remote.port ^ 0x2112, 26);
    const octets = remote.address.split('.').map(Number);
    const cookie = [0x21, 0x12, 0xa4, 0x42];
    octets.forEach((octet, i) => response.writeUInt8(octet ^ cookie[i], 28 + i));
    socket.send(response, remote.port, remote.address);
  });
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  socket.unref();
  return socket.address().port;
}

async function loadEngine(name) {
  switch (name) {
    case 'wrtc': {
      const wrtc = (await import('@roamhq/wrtc')).default;
      const config = { iceServers: JSON.parse(process.env.PEER_ICE_SERVERS ?? '[]') };
      if (process.env.PEER_ICE_POLICY) config.iceTransportPolicy = process.env.PEER_ICE_POLICY;
      return { RTCPeerConnection: wrtc.RTCPeerConnection, config, version: '@roamhq/wrtc' };
    }
    case 'ndc': {
      const polyfill = await import('node-datachannel/polyfill');
      const bindAddress = process.env.PEER_BIND;
      return { RTCPeerConnection: polyfill.RTCPeerConnection,
        config: bindAddress ? { iceServers: [], bindAddress } : { iceServers: [] }, version: 'node-datachannel' };
    }
    case 'werift': {
      const werift = await import('werift');
      const port = await startLoopbackStun();
      return { RTCPeerConnection: werift.RTCPeerConnection, version: 'werift',
        config: { iceServers: [{ urls: `stun:127.0.0.1:${port}` }], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false } };
    }
    default:
      throw new Error(`unknown engine "${name}" (wrtc, ndc, werift)`);
  }
}

const loaded = await loadEngine(engine).catch((error) => {
  emit({ ev: 'error', cmd: 'load', message: `cannot load ${engine}: ${error.message}` });
  process.exit(2);
});

const peer = new FixturePeer({
  RTCPeerConnection: loaded.RTCPeerConnection,
  config: loaded.config,
  emit,
  createHasher: () => {
    const hash = createHash('sha256');
    return { update: (bytes) => hash.update(bytes), digest: async () => hash.digest('hex') };
  },
  randomFill: (bytes) => randomFillSync(bytes),
  now: () => performance.now(),
  filterSdp,
  toSendable: engine === 'werift' ? (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : (bytes) => bytes,
  exit: (code) => process.exit(code),
  peakRssMB: () => +(process.resourceUsage().maxRSS / 1024).toFixed(1),
});

// Commands run one after another, in arrival order, so a test can rely on sequencing.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  let command;
  try { command = JSON.parse(line); } catch { return emit({ ev: 'error', cmd: 'parse', message: `bad JSON: ${line.slice(0, 80)}` }); }
  queue = queue.then(() => peer.handle(command));
});
// The test going away (stdin closed) ends the fixture, so no orphan keeps ports or CPU.
lines.on('close', () => queue.then(() => peer.exit()));
emit({ ev: 'ready', engine, version: loaded.version, pid: process.pid });
