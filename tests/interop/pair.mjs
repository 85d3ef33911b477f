// Manual check of two fixtures against each other (the C# tests do the same with assertions):
//   node pair.mjs "<offerer command>" "<answerer command>" [MiB]
// e.g. ./netns.sh run node pair.mjs "node peer.mjs wrtc" "/usr/bin/python3 aiortc_peer.py" 20
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const [offerCmd, answerCmd, mib = '20'] = process.argv.slice(2);
const bytes = Number(mib) * 1048576;

function start(name, commandLine) {
  const child = spawn('bash', ['-c', `exec ${commandLine}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiters = [];
  const peer = { name, child, send: (o) => child.stdin.write(JSON.stringify(o) + '\n'), waiters, onEvent: null };
  createInterface({ input: child.stdout }).on('line', (line) => {
    let event;
    try { event = JSON.parse(line); } catch { return console.error(`${name}: ${line}`); }
    if (event.ev === 'error') console.error(`${name} error:`, event.message);
    peer.onEvent?.(event);
    const index = waiters.findIndex((w) => w.ev === event.ev);
    if (index >= 0) waiters.splice(index, 1)[0].resolve(event);
  });
  peer.next = (ev, ms = 60000) => new Promise((resolve, reject) => {
    waiters.push({ ev, resolve });
    setTimeout(() => reject(new Error(`${name}: no ${ev} within ${ms} ms`)), ms).unref();
  });
  return peer;
}

const a = start('offerer', offerCmd);
const b = start('answerer', answerCmd);
try {
  await Promise.all([a.next('ready'), b.next('ready')]);
  const t0 = performance.now();
  a.send({ cmd: 'start' });
  const offer = await a.next('sdp');
  b.send({ cmd: 'sdp', type: 'offer', sdp: offer.sdp });
  const answer = await b.next('sdp');
  const opens = Promise.all([a.next('open'), b.next('open')]);
  a.send({ cmd: 'sdp', type: 'answer', sdp: answer.sdp });
  const [openA, openB] = await opens;
  console.log(`open after ${Math.round(performance.now() - t0)} ms (offerer ${openA.ms} ms, answerer ${openB.ms} ms)`);
  for (const [src, dst] of [[a, b], [b, a]]) {
    dst.send({ cmd: 'expect', bytes });
    await dst.next('expecting');
    const t = performance.now();
    src.send({ cmd: 'send', bytes });
    const [sent, got] = await Promise.all([src.next('sent'), dst.next('received')]);
    const ms = performance.now() - t;
    console.log(`${src.name} -> ${dst.name}: ${got.bytes} bytes, ${(got.bytes / 1e3 / ms).toFixed(1)} MB/s, sha ${sent.sha256 === got.sha256 ? 'equal' : 'DIFFERENT'}`);
  }
  b.send({ cmd: 'expectText', count: 1000 });
  a.send({ cmd: 'sendText', count: 1000 });
  const text = await b.next('textReceived');
  console.log(`texts: ${text.count} in order: ${text.inOrder}`);
  const closes = Promise.all([a.next('closed'), b.next('closed')]);
  a.send({ cmd: 'close' });
  const [ca, cb] = await closes;
  console.log(`closed: offerer ${ca.by}, answerer ${cb.by}`);
} catch (error) {
  console.error(error.message);
  process.exitCode = 1;
} finally {
  a.child.kill(); b.child.kill();
}
