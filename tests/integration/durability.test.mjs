// durability.test.mjs: kill -9 while several connections push; restart; every acknowledged line is
// present exactly once. Repeated at several kill points (early, mid-flush, late). Also checks that
// SIGTERM exits 0 after closing every head into chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Strata, request, queryRange } from './lib/strata.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One pusher: its own keep-alive connection and stream; returns acked seqs.
async function pusher(srv, id, stopAt, acked, tsBase) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let seq = 0;
  while (Date.now() < stopAt.t) {
    const batch = [];
    for (let i = 0; i < 50; i++, seq++) {
      // unique, increasing timestamp per pusher; lines unique and recognisable
      batch.push([String(tsBase + BigInt(seq) * 1000n), `pusher=${id} seq=${seq} payload=${'x'.repeat(seq % 97)}`]);
    }
    const body = JSON.stringify({ streams: [{ stream: { job: 'durability', pusher: String(id) }, values: batch }] });
    try {
      const r = await request(srv, 'POST', '/loki/api/v1/push', { body, headers: { 'Content-Type': 'application/json' }, agent });
      if (r.status === 204) for (const [, line] of batch) acked.add(line);
    } catch {
      break; // server went away mid-request: this batch is unacknowledged
    }
  }
  agent.destroy();
}

// Reads back every line of one pusher's stream (paging forward by timestamp).
async function readAll(srv, id, tsBase) {
  const lines = [];
  let start = tsBase;
  const end = tsBase + 10n ** 12n;
  for (;;) {
    const r = await queryRange(srv, { query: `{job="durability", pusher="${id}"}`, start: String(start), end: String(end), limit: '5000', direction: 'forward' });
    assert.equal(r.status, 200, r.text);
    const vals = r.json().data.result.flatMap((s) => s.values);
    for (const v of vals) lines.push(v[1]);
    if (vals.length < 5000) break;
    start = BigInt(vals[vals.length - 1][0]) + 1n;
  }
  return lines;
}

for (const killAfterMs of [150, 700, 1500]) {
  test(`kill -9 after ${killAfterMs}ms of pushes from 4 connections loses nothing acknowledged`, async () => {
    // small blocks and chunks so the kill lands among seals, chunk writes and index commits
    const srv = await new Strata({ args: ['-ingester.chunk_block_size=8192', '-ingester.chunk_target_size=16384', '-ingester.flush_check_period=50ms'] }).start();
    const tsBase = BigInt(Date.now() - 60000) * 1000000n;
    const acked = [new Set(), new Set(), new Set(), new Set()];
    const stopAt = { t: Date.now() + 60000 };
    const ps = acked.map((a, i) => pusher(srv, i, stopAt, a, tsBase));
    await sleep(killAfterMs);
    await srv.kill();
    stopAt.t = 0;
    await Promise.all(ps);
    await srv.start();
    let total = 0;
    for (let i = 0; i < 4; i++) {
      const lines = await readAll(srv, i, tsBase);
      const seen = new Map();
      for (const l of lines) seen.set(l, (seen.get(l) || 0) + 1);
      for (const l of acked[i]) assert.equal(seen.get(l), 1, `acked line ${l} present ${seen.get(l) || 0} times`);
      for (const [l, n] of seen) assert.equal(n, 1, `line ${l} duplicated`);
      total += acked[i].size;
    }
    assert.ok(total > 0, 'some pushes were acknowledged before the kill');
    assert.equal(await srv.stop(), 0);
    srv.cleanup();
  });
}

test('SIGTERM closes every head into chunks and exits 0; data survives', async () => {
  const srv = await new Strata().start();
  const ts = BigInt(Date.now()) * 1000000n;
  const values = Array.from({ length: 1000 }, (_, i) => [String(ts + BigInt(i)), `graceful ${i}`]);
  const r = await request(srv, 'POST', '/loki/api/v1/push', { body: JSON.stringify({ streams: [{ stream: { job: 'graceful' }, values }] }), headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 204);
  assert.equal(await srv.stop(), 0);
  assert.match(srv.logs, /HTTP drained; closing heads into chunks/);
  await srv.start();
  const q = await queryRange(srv, { query: '{job="graceful"}', start: String(ts), end: String(ts + 1000n), limit: '5000' });
  assert.equal(q.json().data.result[0].values.length, 1000);
  // nothing left to replay: the WAL was removed after the flush
  assert.doesNotMatch(srv.logs, /WAL replayed/);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});
