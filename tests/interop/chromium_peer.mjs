// Interop fixture: headless Chromium as a peer, with the same JSON-lines protocol as peer.mjs.
//   node chromium_peer.mjs          (run inside the private namespace: netns.sh / nsenter)
// Serves chromium_page.html + peer_core.mjs on 127.0.0.1, starts Chromium on that page, and relays
// stdin commands to the page and the page's events to stdout over one WebSocket.
// CHROMIUM (default /usr/bin/chromium) picks the browser binary.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const files = {
  '/': ['chromium_page.html', 'text/html'],
  '/peer_core.mjs': ['peer_core.mjs', 'text/javascript'],
};

const server = createServer((request, response) => {
  const entry = files[new URL(request.url, 'http://x').pathname];
  if (!entry) { response.writeHead(404).end(); return; }
  response.writeHead(200, { 'content-type': entry[1], 'cache-control': 'no-store' });
  response.end(readFileSync(join(here, entry[0])));
});
const sockets = new WebSocketServer({ server, path: '/ws' });
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;

const profile = mkdtempSync(join(tmpdir(), 'sleaprtc-chromium-'));
const browser = spawn(process.env.CHROMIUM ?? '/usr/bin/chromium', [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--allow-loopback-in-peer-connection',
  `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`,
], { stdio: ['ignore', 'ignore', 'pipe'] });
let browserLog = '';
browser.stderr.on('data', (chunk) => { browserLog = (browserLog + chunk).slice(-3000); });

let finished = false;
function finish(code) {
  if (finished) return;
  finished = true;
  try { browser.kill('SIGKILL'); } catch { /* already gone */ }
  try { rmSync(profile, { recursive: true, force: true }); } catch { /* best effort */ }
  process.exit(code);
}
browser.on('exit', (code) => {
  emit({ ev: 'error', cmd: 'browser', message: `chromium exited (${code}); stderr tail: ${browserLog}` });
  finish(3);
});
const startup = setTimeout(() => {
  emit({ ev: 'error', cmd: 'load', message: `page did not connect within 20 s; chromium stderr tail: ${browserLog}` });
  finish(3);
}, 20000);

let page = null;
const backlog = [];
sockets.on('connection', (socket) => {
  page = socket;
  socket.on('message', (data) => {
    const event = JSON.parse(String(data));
    if (event.ev === 'ready') clearTimeout(startup);
    emit(event);
  });
  socket.on('close', () => finish(0));
  for (const line of backlog.splice(0)) socket.send(line);
});

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  if (page) page.send(line); else backlog.push(line);
});
lines.on('close', () => finish(0));
process.on('SIGTERM', () => finish(0));
