// memory.test.mjs: heads over ingester.head_memory_target. Many small streams push a few lines
// each; the flusher compresses ("freezes") their live heads, into spill files (the default,
// ingester.head_spill) or on the heap. Every line must still be returned exactly, in time order, by
// queries over the frozen heads, after more lines (some out of order) land behind the frozen part,
// after a clean restart (frozen heads written to chunks), and after kill -9 (the WAL replays them;
// spill files left behind are a cache and removed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Strata, request, pushJSON, queryRange } from './lib/strata.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const STREAMS = 300;

async function metric(srv, name) {
  const r = await request(srv, 'GET', '/metrics');
  const m = r.text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// One push round: a line for every stream at base + round ms (+ stream ns), recorded in `want`.
async function round(srv, want, base, k, { shift = 0n } = {}) {
  const streams = [];
  for (let i = 0; i < STREAMS; i++) {
    const ts = base + BigInt(k) * 1000000n + shift + BigInt(i);
    const line = `level=info msg="request handled" path=/api/v1/orders/${i % 7} method=GET status=200 stream=${i} round=${k}`;
    want[i].push([ts, line]);
    streams.push({ stream: { job: 'freeze', n: String(i) }, values: [[String(ts), line]] });
  }
  const r = await pushJSON(srv, streams);
  assert.equal(r.status, 204, r.text);
}

async function checkAll(srv, want, base) {
  const r = await queryRange(srv, { query: '{job="freeze"}', start: String(base - 10n ** 9n), end: String(base + 10n ** 11n),
    limit: '100000', direction: 'forward' });
  assert.equal(r.status, 200, r.text);
  const got = new Map(r.json().data.result.map((s) => [s.stream.n, s.values]));
  assert.equal(got.size, STREAMS);
  for (let i = 0; i < STREAMS; i++) {
    const exp = [...want[i]].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([ts, l]) => [String(ts), l]);
    assert.deepEqual(got.get(String(i)).map((v) => [v[0], v[1]]), exp, `stream ${i}`);
  }
  const c = await request(srv, 'GET', `/loki/api/v1/query?query=${encodeURIComponent('sum(count_over_time({job="freeze"} |= "status=200" [10m]))')}&time=${base + 3n * 10n ** 11n / 10n}`);
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json().data.result[0].value[1], String(want.reduce((n, w) => n + w.length, 0)));
}

for (const [name, extra] of [
  ['spill files (small segments: compaction runs)', ['-ingester.head_spill_segment_size=8KB']],
  ['on the heap', ['-ingester.head_spill=false']],
]) {
  test(`frozen heads ${name}: exact results before and after a restart and a kill -9`, async () => {
    const srv = await new Strata({ args: ['-ingester.head_memory_target=200KB', '-ingester.flush_check_period=100ms',
      '-limits_config.max_entries_limit_per_query=100000', ...extra] }).start();
    try {
      await scenario(srv, extra[0] !== '-ingester.head_spill=false');
    } finally {
      await srv.kill();
      srv.cleanup();
    }
  });
}

function spillFiles(srv) {
  const dir = path.join(srv.dataDir, 'chunks', '.spill');
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

async function scenario(srv, spill) {
  const want = Array.from({ length: STREAMS }, () => []);
  const base = BigInt(Date.now() - 60000) * 1000000n;
  for (let k = 0; k < 8; k++) await round(srv, want, base, k);
  let frozen = 0;
  for (let i = 0; i < 100 && frozen === 0; i++) {
    frozen = await metric(srv, 'strata_ingester_head_freezes_total');
    if (frozen === 0) await sleep(100);
  }
  assert.ok(frozen > 0, 'no head was frozen');
  assert.ok(await metric(srv, 'strata_ingester_head_resident_bytes') < await metric(srv, 'strata_ingester_head_bytes'));
  assert.equal(await metric(srv, 'strata_ingester_memory_closes_total'), 0, 'freezing alone should have been enough');
  const spilled = await metric(srv, 'strata_ingester_head_spill_bytes');
  if (spill) {
    assert.ok(spilled > 0, 'frozen frames should be in spill files');
    assert.ok(spillFiles(srv) > 0);
  } else {
    assert.equal(spilled, 0);
    assert.equal(spillFiles(srv), 0);
  }
  await checkAll(srv, want, base);

  // more lines behind the frozen part, half of them older than everything frozen so far
  for (let k = 8; k < 12; k++) await round(srv, want, base, k, { shift: k % 2 ? -(10n ** 9n) : 0n });
  await sleep(500); // the flusher freezes again (tail + frozen part recompressed together)
  await checkAll(srv, want, base);

  assert.equal(await srv.stop(), 0);
  await srv.start();
  await checkAll(srv, want, base);

  for (let k = 12; k < 20; k++) await round(srv, want, base, k);
  for (let i = 0; i < 100 && await metric(srv, 'strata_ingester_head_freezes_total') === 0; i++) await sleep(100);
  assert.ok(await metric(srv, 'strata_ingester_head_freezes_total') > 0, 'no head was frozen after the restart');
  await srv.kill();
  const stale = path.join(srv.dataDir, 'chunks', '.spill', 'ffffffffffffffff.spill');
  if (spill) {
    assert.ok(spillFiles(srv) > 0, 'kill -9 should have left spill files behind');
    writeFileSync(stale, 'a previous run\'s frame');
  }
  await srv.start();
  if (spill) assert.ok(!existsSync(stale), 'spill files of the previous run should be removed at start-up');
  await checkAll(srv, want, base);
  assert.equal(await srv.stop(), 0);
}
