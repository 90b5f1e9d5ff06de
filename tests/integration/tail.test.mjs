// tail.test.mjs: live tail over WebSocket (/loki/api/v1/tail, /api/prom/tail) against the real binary
// with the npm `ws` client: lines pushed after the tail starts arrive within a second, the backfill
// from `start`, delay_for, categorize-labels, dropped_entries for a reader that stops reading, the
// server's pings, tail_max_duration, and the plain 400s given before the upgrade.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Strata, pushJSON, qs } from './lib/strata.mjs';

const nowNs = () => BigInt(Date.now()) * 1000000n;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let srv;

before(async () => {
  // generous ingestion limits: the slow-reader test pushes tens of MB
  srv = await new Strata({
    args: ['-limits_config.ingestion_rate_mb=2000', '-limits_config.ingestion_burst_size_mb=2000',
      '-limits_config.per_stream_rate_limit=2000MB', '-limits_config.per_stream_rate_limit_burst=2000MB'],
  }).start();
});

after(async () => {
  await srv.stop();
  srv.cleanup();
});

// Opens a tail and collects its messages. Resolves once open (or rejects with the HTTP answer).
function openTail(server, params, { path = '/loki/api/v1/tail', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}?${qs(params)}`, { headers });
    const t = { ws, messages: [], pings: 0, closed: null, waiters: [] };
    const wake = () => { for (const w of t.waiters.splice(0)) w(); };
    ws.on('ping', () => { t.pings++; });
    ws.on('message', (m) => { t.messages.push(JSON.parse(m.toString())); wake(); });
    ws.on('close', (code, reason) => { t.closed = { code, reason: reason.toString() }; wake(); });
    ws.on('open', () => resolve(t));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.on('error', (e) => { if (!t.closed) reject(e); });
  });
}

// Waits until pred(t) holds (checked on every message/close) or fails after ms.
async function until(t, pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred(t)) {
    const left = end - Date.now();
    if (left <= 0) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => { t.waiters.push(r); setTimeout(r, Math.min(left, 50)); });
  }
}

const lines = (t) => t.messages.flatMap((m) => m.streams.flatMap((s) => s.values.map((v) => v[1])));

function close(t) {
  if (t.closed) return Promise.resolve();
  return new Promise((r) => { t.ws.on('close', r); t.ws.close(1000, 'done'); });
}

test('lines pushed after the tail starts arrive within a second', async () => {
  const t = await openTail(srv, { query: '{job="live"} |= "keep"', start: String(nowNs()) });
  for (let i = 0; i < 3; i++) {
    const sent = Date.now();
    const text = `keep line ${i} ${sent}`;
    const r = await pushJSON(srv, [{ stream: { job: 'live' }, values: [[String(nowNs()), text], [String(nowNs()), 'drop me']] }]);
    assert.equal(r.status, 204, r.text);
    await until(t, (x) => lines(x).includes(text), 1000, `line ${i}`);
    assert.ok(Date.now() - sent < 1000, `arrived after ${Date.now() - sent} ms`);
  }
  assert.ok(!lines(t).includes('drop me'), 'the line filter applies to live lines');
  const m = t.messages[t.messages.length - 1];
  assert.deepEqual(Object.keys(m), ['streams']);
  assert.equal(m.streams[0].stream.job, 'live');
  assert.equal(m.streams[0].values[0].length, 2);
  assert.match(m.streams[0].values[0][0], /^\d{19}$/);
  await close(t);
});

test('backfill: the newest `limit` lines since start, oldest first, then live lines', async () => {
  const base = nowNs() - 600n * 1000000000n;
  const values = [];
  for (let i = 0; i < 8; i++) values.push([String(base + BigInt(i) * 1000000000n), `old ${i}`]);
  values.push([String(nowNs() - 7200n * 1000000000n), 'before start']);
  const r = await pushJSON(srv, [{ stream: { job: 'backfill' }, values }]);
  assert.equal(r.status, 204, r.text);
  const t = await openTail(srv, { query: '{job="backfill"}', limit: '5', start: String(nowNs() - 3600n * 1000000000n) });
  await until(t, (x) => lines(x).length >= 5, 2000, 'backfill');
  assert.deepEqual(lines(t), ['old 3', 'old 4', 'old 5', 'old 6', 'old 7']);
  await pushJSON(srv, [{ stream: { job: 'backfill' }, values: [[String(nowNs()), 'new one']] }]);
  await until(t, (x) => lines(x).includes('new one'), 1000, 'live line after backfill');
  assert.equal(lines(t).length, 6, 'nothing repeated');
  await close(t);
});

test('categorize-labels: three-element values, structured metadata apart, encodingFlags', async () => {
  const t = await openTail(srv, { query: '{job="cat"} | logfmt' },
    { headers: { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' } });
  await pushJSON(srv, [{ stream: { job: 'cat' }, values: [[String(nowNs()), 'level=warn msg=hi', { trace_id: 'abc' }]] }]);
  await until(t, (x) => lines(x).length >= 1, 1000, 'a categorized line');
  const m = t.messages[0];
  assert.deepEqual(m.encodingFlags, ['categorize-labels']);
  assert.equal(m.streams[0].stream.job, 'cat');
  assert.equal(m.streams[0].stream.trace_id, undefined);
  const v = m.streams[0].values[0];
  assert.equal(v.length, 3);
  assert.equal(v[2].structuredMetadata.trace_id, 'abc');
  assert.equal(v[2].parsed.level, 'warn');
  await close(t);
});

test('delay_for holds lines back; more than 5 is a 400 before the upgrade', async () => {
  await assert.rejects(openTail(srv, { query: '{job="x"}', delay_for: '6' }),
    (e) => e.status === 400 && e.body === "delay_for can't be greater than 5");
  await assert.rejects(openTail(srv, { query: '{job="x"}', delay_for: '-1' }),
    (e) => e.status === 400 && /out of range/.test(e.body));
  const t = await openTail(srv, { query: '{job="delayed"}', delay_for: '1' });
  const sent = Date.now();
  await pushJSON(srv, [{ stream: { job: 'delayed' }, values: [[String(nowNs()), 'late']] }]);
  await until(t, (x) => lines(x).includes('late'), 3000, 'the delayed line');
  assert.ok(Date.now() - sent >= 900, `arrived after ${Date.now() - sent} ms, before delay_for`);
  await close(t);
});

test('an invalid query (or a metric query) gives a plain 400 before the upgrade', async () => {
  await assert.rejects(openTail(srv, { query: '{job=' }),
    (e) => e.status === 400 && e.body.startsWith('parse error at line 1, col 6'));
  await assert.rejects(openTail(srv, { query: 'rate({job="x"}[1m])' }), (e) => e.status === 400);
  await assert.rejects(openTail(srv, { query: '{job="x"}', limit: 'abc' }),
    (e) => e.status === 400 && e.body === 'strconv.Atoi: parsing "abc": invalid syntax');
});

test('the server pings every second; the legacy path tails the same way', async () => {
  const t = await openTail(srv, { query: '{job="ping"}' }, { path: '/api/prom/tail' });
  await sleep(2600);
  assert.ok(t.pings >= 2, `${t.pings} pings`);
  await pushJSON(srv, [{ stream: { job: 'ping' }, values: [[String(nowNs()), 'legacy']] }]);
  await until(t, (x) => lines(x).includes('legacy'), 1000, 'a line on /api/prom/tail');
  await close(t);
  assert.equal(t.closed.code, 1000);
});

test('a reader that stops reading gets dropped_entries', async () => {
  const t = await openTail(srv, { query: '{job="flood"}' });
  t.ws.pause(); // stop reading: the kernel buffers fill, then the server's queue of 10 messages
  const line = 'x'.repeat(1000);
  let seq = 0;
  for (let batch = 0; batch < 40; batch++) {
    const values = [];
    for (let i = 0; i < 1000; i++) values.push([String(nowNs() + BigInt(seq)), `${line} ${seq++}`]);
    const r = await pushJSON(srv, [{ stream: { job: 'flood', n: String(batch % 2) }, values }]);
    assert.equal(r.status, 204, r.text);
  }
  await sleep(500);
  t.ws.resume();
  await until(t, (x) => x.messages.some((m) => m.dropped_entries), 15000, 'a message with dropped_entries');
  const m = t.messages.find((x) => x.dropped_entries);
  assert.ok(m.dropped_entries.length > 0 && m.dropped_entries.length <= 1000);
  const d = m.dropped_entries[0];
  assert.equal(d.labels.job, 'flood');
  assert.match(d.timestamp, /^\d{19}$/);
  const got = lines(t).length;
  assert.ok(got < seq, `${got} of ${seq} lines delivered`);
  for (const x of t.messages) assert.ok(x.streams.reduce((n, s) => n + s.values.length, 0) <= 100);
  await close(t);
});

test('tails end after querier.tail_max_duration with a normal close', async () => {
  const short = await new Strata({ args: ['-querier.tail_max_duration=1s'] }).start();
  try {
    const t = await openTail(short, { query: '{job="any"}' });
    const opened = Date.now();
    await until(t, (x) => x.closed, 4000, 'the close');
    assert.equal(t.closed.code, 1000);
    assert.equal(t.closed.reason, 'reached tail max duration limit');
    assert.ok(Date.now() - opened >= 800);
  } finally {
    await short.stop();
    short.cleanup();
  }
});
