// limits.test.mjs: tenants (auth_enabled, X-Scope-OrgID, isolation across every read endpoint) and
// the admission limits: tenant rate, per-stream rate, active streams per tenant (naming the label
// with the most values), memory budget; a retried request after a partial 429 stores nothing twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, request, pushJSON, queryRange, qs } from './lib/strata.mjs';

const nowNs = () => BigInt(Date.now()) * 1000000n;

test('auth_enabled: X-Scope-OrgID required, validated, and tenants isolated everywhere', async () => {
  const srv = await new Strata({ args: ['-auth_enabled=true'] }).start();
  const t = nowNs();
  let r = await pushJSON(srv, [{ stream: { job: 'a' }, values: [[String(t), 'line of A']] }]);
  assert.equal(r.status, 401);
  assert.equal(r.text, 'no org id\n');
  for (const bad of ['..', '.', 'a/b', 'x'.repeat(151), 'a|b']) {
    r = await pushJSON(srv, [{ stream: { job: 'a' }, values: [[String(t), 'x']] }], { headers: { 'X-Scope-OrgID': bad } });
    assert.equal(r.status, 400, bad);
  }
  r = await pushJSON(srv, [{ stream: { job: 'a', team: 'red' }, values: [[String(t), 'line of A']] }], { headers: { 'X-Scope-OrgID': 'tenant-a' } });
  assert.equal(r.status, 204);
  r = await pushJSON(srv, [{ stream: { job: 'b', owner: 'blue' }, values: [[String(t + 1n), 'line of B']] }], { headers: { 'X-Scope-OrgID': 'tenant-b' } });
  assert.equal(r.status, 204);
  const range = { start: String(t - 1000000000n), end: String(t + 1000000000n) };
  for (const [tenant, job, other] of [['tenant-a', 'a', 'b'], ['tenant-b', 'b', 'a']]) {
    const h = { 'X-Scope-OrgID': tenant };
    r = await queryRange(srv, { query: '{job=~".+"}', ...range }, h);
    assert.deepEqual(r.json().data.result.map((s) => s.stream.job), [job]);
    r = await queryRange(srv, { query: `{job="${other}"}`, ...range }, h);
    assert.deepEqual(r.json().data.result, []);
    r = await request(srv, 'GET', `/loki/api/v1/labels?${qs(range)}`, { headers: h });
    assert.ok(!r.json().data.includes(tenant === 'tenant-a' ? 'owner' : 'team'));
    r = await request(srv, 'GET', `/loki/api/v1/label/job/values?${qs(range)}`, { headers: h });
    assert.deepEqual(r.json().data, [job]);
    r = await request(srv, 'GET', `/loki/api/v1/series?${qs(range)}`, { headers: h });
    assert.deepEqual(r.json().data.map((s) => s.job), [job]);
  }
  r = await queryRange(srv, { query: '{job=~".+"}', ...range });
  assert.equal(r.status, 401);
  // after a flush the isolation holds for chunks and the index too
  r = await request(srv, 'POST', '/flush');
  assert.equal(r.status, 204);
  r = await queryRange(srv, { query: '{job=~".+"}', ...range }, { 'X-Scope-OrgID': 'tenant-b' });
  assert.deepEqual(r.json().data.result.map((s) => s.stream.job), ['b']);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});

test('tenant ingestion rate: whole request refused with 429 and Loki\'s text', async () => {
  const srv = await new Strata({ args: ['-limits_config.ingestion_rate_mb=0.001', '-limits_config.ingestion_burst_size_mb=0.002'] }).start();
  const t = nowNs();
  const big = 'y'.repeat(3000);
  const r = await pushJSON(srv, [{ stream: { job: 'rate' }, values: [[String(t), big]] }]);
  assert.equal(r.status, 429);
  // (bytes count the line plus structured metadata, including the detected_level Strata adds)
  assert.match(r.text, /^ingestion rate limit exceeded for user fake \(limit: 1048 bytes\/sec\) while attempting to ingest '1' lines totaling '30\d\d' bytes, reduce log volume/);
  const q = await queryRange(srv, { query: '{job="rate"}', start: String(t - 1000n), end: String(t + 1000n) });
  assert.deepEqual(q.json().data.result, []);
  assert.equal((await pushJSON(srv, [{ stream: { job: 'rate' }, values: [[String(t), 'small']] }])).status, 204);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});

test('active streams per tenant: new streams over the limit refused, the label to blame named, retries exact', async () => {
  const srv = await new Strata({ args: ['-limits_config.max_global_streams_per_user=3'] }).start();
  const t = nowNs();
  const streams = [0, 1, 2, 3, 4].map((i) => ({ stream: { job: 'api', pod: `pod-${i}` }, values: [[String(t + BigInt(i)), `line ${i}`]] }));
  let r = await pushJSON(srv, streams);
  assert.equal(r.status, 429);
  assert.match(r.text, /maximum active stream limit exceeded when trying to create stream \{job="api", pod="pod-3"/);
  assert.match(r.text, /maximum active stream limit exceeded when trying to create stream \{job="api", pod="pod-4"/);
  assert.match(r.text, /user: 'fake' \(labels with the most values among the 3 active streams: pod \(3\), job \(1\)\)/);
  // the client retries the same request: the three stored streams must not get a second copy
  r = await pushJSON(srv, streams);
  assert.equal(r.status, 429);
  const q = await queryRange(srv, { query: '{job="api"}', start: String(t - 1000n), end: String(t + 1000n), limit: '100' });
  const got = q.json().data.result.map((s) => [s.stream.pod, s.values.length]).sort();
  assert.deepEqual(got, [['pod-0', 1], ['pod-1', 1], ['pod-2', 1]]);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});

test('per-stream rate limit: 429 for the stream, other streams stored', async () => {
  const srv = await new Strata({ args: ['-limits_config.per_stream_rate_limit=1000', '-limits_config.per_stream_rate_limit_burst=2000'] }).start();
  const t = nowNs();
  assert.equal((await pushJSON(srv, [{ stream: { job: 'hot' }, values: [[String(t), 'first']] }])).status, 204);
  const r = await pushJSON(srv, [
    { stream: { job: 'hot' }, values: [[String(t + 1n), 'z'.repeat(5000)]] },
    { stream: { job: 'calm' }, values: [[String(t + 2n), 'fine']] },
  ]);
  assert.equal(r.status, 429);
  // Loki's ingester text (reference 1.7/1.8): each ignored entry with the per-stream reason, then the totals
  assert.match(r.text, /^entry with timestamp \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC ignored, reason: 'Per stream rate limit exceeded \(limit: 1000B\/sec\) while attempting to ingest for stream '\{job="hot"[^']*\}' totaling 5000B, consider splitting a stream/);
  assert.match(r.text, /',\nuser 'fake', total ignored: 1 out of 1 for stream: \{job="hot"[^}]*\}\n$/);
  const q = await queryRange(srv, { query: '{job=~"hot|calm"}', start: String(t - 1000n), end: String(t + 1000n) });
  assert.deepEqual(q.json().data.result.map((s) => [s.stream.job, s.values.map((v) => v[1])]).sort(), [['calm', ['fine']], ['hot', ['first']]]);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});

test('memory budget: 503 (retryable), never 400', async () => {
  const srv = await new Strata({ args: ['-ingester.memory_budget=2KB'] }).start();
  const t = nowNs();
  const r = await pushJSON(srv, [{ stream: { job: 'mem' }, values: [[String(t), 'm'.repeat(4000)]] }]);
  assert.equal(r.status, 503);
  assert.match(r.text, /ingester memory budget exceeded/);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});
