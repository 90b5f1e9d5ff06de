// push_worker.mjs: a worker thread that pushes as fast as it can in one format (Loki JSON, Loki
// protobuf + snappy, or OTLP JSON) on its own keep-alive connection, and reports to its parent every
// batch the server acknowledged (2xx) as {acked: [line, ...]}. It stops at the first connection
// error (the server was killed: that batch is unacknowledged) or when told {stop: true}, and then
// posts {done: true, sent, nacked}. workerData: {port, format, id, round, tsBase (string), batch}.
import { parentPort, workerData } from 'node:worker_threads';
import http from 'node:http';
import SnappyJS from 'snappyjs';

const { port, format, id, round, batch = 100 } = workerData;
const tsBase = BigInt(workerData.tsBase);
let stop = false;
parentPort.on('message', (m) => { if (m.stop) stop = true; });

function varint(v) {
  let n = BigInt(v);
  const o = [];
  while (n >= 0x80n) { o.push(Number(n & 0x7fn) | 0x80); n >>= 7n; }
  o.push(Number(n));
  return Buffer.from(o);
}
const fld = (num, b) => Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
const str = (num, s) => fld(num, Buffer.from(s));
const uint = (num, v) => Buffer.concat([varint(num << 3), varint(v)]);

// [[tsNs bigint, line], ...] -> {body, headers, path}
function encode(entries) {
  switch (format) {
    case 'json':
      return {
        path: '/loki/api/v1/push',
        headers: { 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ streams: [{ stream: { job: 'kill9', client: 'json' }, values: entries.map(([t, l]) => [String(t), l]) }] })),
      };
    case 'proto': {
      const pb = fld(1, Buffer.concat([str(1, '{client="proto", job="kill9"}'),
        ...entries.map(([t, l]) => fld(2, Buffer.concat([fld(1, Buffer.concat([uint(1, t / 1000000000n), uint(2, t % 1000000000n)])), str(2, l)])))]));
      return { path: '/loki/api/v1/push', headers: { 'Content-Type': 'application/x-protobuf' }, body: Buffer.from(SnappyJS.compress(pb)) };
    }
    default:
      return {
        path: '/otlp/v1/logs',
        headers: { 'Content-Type': 'application/json' },
        body: Buffer.from(JSON.stringify({ resourceLogs: [{
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'kill9-otlp' } }] },
          scopeLogs: [{ scope: { name: 'w' }, logRecords: entries.map(([t, l]) => ({ timeUnixNano: String(t), body: { stringValue: l } })) }],
        }] })),
      };
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post({ path, headers, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

let seq = 0, sent = 0, acked = 0;
while (!stop) {
  const entries = [];
  for (let i = 0; i < batch; i++, seq++) {
    // unique, increasing timestamps per worker; lines unique and recognisable, of varying length
    entries.push([tsBase + BigInt(seq) * 1000n, `round=${round} client=${format} w=${id} seq=${seq} ${'p'.repeat(seq % 61)}`]);
  }
  sent += entries.length;
  let status;
  try {
    status = await post(encode(entries));
  } catch {
    break; // the server went away mid-request: this batch is unacknowledged
  }
  if (status >= 200 && status < 300) {
    acked += entries.length;
    parentPort.postMessage({ acked: entries.map((e) => e[1]) });
  } else if (status !== 429 && status !== 503) {
    parentPort.postMessage({ error: `HTTP ${status}` });
    break;
  }
}
agent.destroy();
parentPort.postMessage({ done: true, sent, nacked: acked });
