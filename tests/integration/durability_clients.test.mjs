// durability_clients.test.mjs: kill -9 while three clients push concurrently, each in another format
// (Loki JSON, Loki protobuf + snappy, OTLP JSON), each a worker thread with its own connection that
// records which batches got a 2xx. The server is SIGKILLed at a random moment, restarted on the same
// data directory, and every acknowledged line of every round so far must be there exactly once (no
// duplicate at all, none missing). Repeated over several rounds, so kills land during pushes, seals,
// chunk writes, index commits and WAL replays of earlier kills. Small blocks and chunks and a fast
// flush loop make those happen often.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Strata, queryRange } from './lib/strata.mjs';
import { rng } from './lib/gen.mjs';

const WORKER = new URL('./lib/push_worker.mjs', import.meta.url);
const FORMATS = ['json', 'proto', 'otlp'];
const SELECTOR = { json: '{job="kill9", client="json"}', proto: '{job="kill9", client="proto"}', otlp: '{service_name="kill9-otlp"}' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startWorker(srv, format, id, round, tsBase, acked) {
  const w = new Worker(WORKER, { workerData: { port: srv.port, format, id, round, tsBase: String(tsBase) } });
  const done = new Promise((resolve, reject) => {
    w.on('message', (m) => {
      if (m.acked) for (const l of m.acked) acked.add(l);
      if (m.error) reject(new Error(`${format}: ${m.error}`));
      if (m.done) resolve(m);
    });
    w.on('error', reject);
  });
  return { w, done };
}

// Every line of one client's stream, paging forward by timestamp.
async function readAll(srv, format, from) {
  const out = [];
  let start = from;
  const end = BigInt(Date.now()) * 1000000n + 60n * 1000000000n;
  for (;;) {
    const r = await queryRange(srv, { query: SELECTOR[format], start: String(start), end: String(end), limit: '5000', direction: 'forward' });
    assert.equal(r.status, 200, r.text);
    const vals = r.json().data.result.flatMap((s) => s.values).sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1));
    for (const v of vals) out.push(v[1]);
    if (vals.length < 5000) break;
    start = BigInt(vals[vals.length - 1][0]) + 1n;
  }
  return out;
}

test('kill -9 at random moments while JSON, protobuf and OTLP clients push: every acknowledged line exactly once', { timeout: 90000 }, async (t) => {
  const seed = Number(process.env.STRATA_KILL_SEED || Date.now() % 100000);
  const rand = rng(seed);
  const srv = new Strata({ args: ['-ingester.chunk_block_size=8192', '-ingester.chunk_target_size=32768', '-ingester.flush_check_period=50ms',
    '-limits_config.ingestion_rate_mb=1000', '-limits_config.ingestion_burst_size_mb=1000',
    '-limits_config.per_stream_rate_limit=1000MB', '-limits_config.per_stream_rate_limit_burst=1000MB'] });
  const from = BigInt(Date.now() - 600000) * 1000000n;
  const acked = Object.fromEntries(FORMATS.map((f) => [f, new Set()]));
  const kills = [];
  try {
    for (let round = 0; round < 4; round++) {
      await srv.start({ timeoutMs: 30000 });
      // each round's timestamps in their own band, so rounds never collide
      const tsBase = from + BigInt(round) * 60n * 1000000000n;
      const sizes = Object.fromEntries(FORMATS.map((f) => [f, acked[f].size]));
      const workers = FORMATS.map((f, i) => startWorker(srv, f, i, round, tsBase + BigInt(i), acked[f]));
      // the random moment is counted from the first acknowledged batch, so that a slow start (a
      // loaded machine) cannot leave a round without any acknowledged line to check
      const first = Date.now() + 20000;
      while (FORMATS.every((f) => acked[f].size === sizes[f]) && Date.now() < first) await sleep(5);
      const killAfter = Math.floor(rand() * 1400);
      kills.push(killAfter);
      // (STRATA_KILL_SEED=<seed> replays the same kill moments)
      await sleep(killAfter);
      await srv.kill();
      const results = await Promise.all(workers.map((x) => x.done));
      await Promise.all(workers.map((x) => x.w.terminate()));
      assert.ok(results.some((r) => r.nacked > 0), `round ${round}: some batches were acknowledged before the kill`);
      // restart on the same data: WAL replay; then check everything acknowledged so far
      await srv.start({ timeoutMs: 30000 });
      for (const f of FORMATS) {
        const got = await readAll(srv, f, from);
        const seen = new Map();
        for (const l of got) seen.set(l, (seen.get(l) || 0) + 1);
        for (const [l, n] of seen) assert.equal(n, 1, `seed ${seed} kills ${kills}: ${f} line duplicated: ${l}`);
        let missing = 0;
        for (const l of acked[f]) if (!seen.has(l)) missing++;
        assert.equal(missing, 0, `seed ${seed} kills ${kills}: ${missing} of ${acked[f].size} acknowledged ${f} lines missing`);
      }
      await srv.kill(); // the next round starts from a crashed state too
    }
    // finally a clean stop: SIGTERM closes every head into chunks; all still there once
    await srv.start({ timeoutMs: 30000 });
    assert.equal(await srv.stop(), 0, srv.logs);
    await srv.start({ timeoutMs: 30000 });
    for (const f of FORMATS) {
      const got = await readAll(srv, f, from);
      const set = new Set(got);
      assert.equal(set.size, got.length, `${f}: duplicates after a clean restart`);
      for (const l of acked[f]) if (!set.has(l)) assert.fail(`${f}: ${l} missing after a clean restart`);
    }
    assert.equal(await srv.stop(), 0, srv.logs);
    t.diagnostic(`seed ${seed}, kills ${kills.join(', ')} ms after the first acknowledgement; acknowledged lines: ${FORMATS.map((f) => `${f} ${acked[f].size}`).join(', ')}`);
  } catch (e) {
    // name the replayable seed and show what the server said (a sanitizer report, an error line)
    e.message = `seed ${seed} kills ${kills}: ${e.message}\nserver log (last 6000 bytes):\n${srv.logs.slice(-6000)}`;
    throw e;
  } finally {
    await srv.kill();
    srv.cleanup();
  }
});
