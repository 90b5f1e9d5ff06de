// tenants.test.mjs: tenant isolation through every read endpoint with auth_enabled=true. Tenants A
// and B push streams with the same job label (and each a label of its own) into one server; every
// endpoint is then asked by A, by B, without the header (401 "no org id") and with invalid tenant
// IDs (Loki's texts): query_range, query (metric), labels, label values, series, index/stats,
// index/volume, detected_labels, detected_fields, patterns, tail (WebSocket), the delete API and the
// restore API. Isolation is checked before and after a flush (heads, then chunks and the index), and
// across a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { Strata, request, pushJSON, qs, tempDir } from './lib/strata.mjs';

const SEC = 1000000000n;
const NOW = BigInt(Date.now()) * 1000000n;
const RANGE = { start: String(NOW - 3600n * SEC), end: String(NOW + 60n * SEC) };
const A = { 'X-Scope-OrgID': 'tenant-a' };
const B = { 'X-Scope-OrgID': 'tenant-b' };
const N = 40;
// Same job label in both tenants; `team` only in A, `owner` only in B; distinct words and fields.
const linesA = Array.from({ length: N }, (_, i) => `level=info msg="alpha request ${i}" user=alice latency=${i}ms`);
const linesB = Array.from({ length: N }, (_, i) => `level=error msg="beta failure ${i}" code=500 region=eu`);
const vals = (ls) => ls.map((l, i) => [String(NOW - BigInt(N - i) * SEC), l]);

let srv, cfgDir;
before(async () => {
  // a lifecycle S3 section (pointing nowhere) so that the restore API is served; listing restores
  // reads only the index
  cfgDir = tempDir('strata-tenants-cfg-');
  const cfg = path.join(cfgDir, 'strata.yaml');
  writeFileSync(cfg, 'lifecycle:\n  s3:\n    endpoint: http://127.0.0.1:9\n    bucket: none\n    path_style: true\n');
  srv = await new Strata({ args: ['-auth_enabled=true'], config: cfg }).start();
  let r = await pushJSON(srv, [{ stream: { job: 'shared', team: 'red' }, values: vals(linesA) }], { headers: A });
  assert.equal(r.status, 204, r.text);
  r = await pushJSON(srv, [{ stream: { job: 'shared', owner: 'blue' }, values: vals(linesB) }], { headers: B });
  assert.equal(r.status, 204, r.text);
});
after(async () => {
  assert.equal(await srv.stop(), 0, srv.logs);
  srv.cleanup();
});

const get = (p, params, headers) => request(srv, 'GET', `${p}?${qs(params)}`, { headers });
async function ok(p, params, headers) {
  const r = await get(p, params, headers);
  assert.equal(r.status, 200, `${p}: ${r.text}`);
  return r.json();
}

// Every endpoint, as a function of the tenant's headers, returning what that tenant can see in a
// comparable form; `own`/`other` say what A must and must not see (B's expectations mirror them).
const ENDPOINTS = {
  query_range: async (h) => (await ok('/loki/api/v1/query_range', { query: '{job="shared"}', limit: '1000', ...RANGE }, h))
    .data.result.flatMap((s) => s.values.map((v) => v[1])).sort(),
  query_metric: async (h) => (await ok('/loki/api/v1/query', { query: 'sum by (team, owner) (count_over_time({job="shared"}[2h]))', time: RANGE.end }, h))
    .data.result.map((s) => [s.metric, s.value[1]]),
  labels: async (h) => (await ok('/loki/api/v1/labels', RANGE, h)).data,
  label_values: async (h) => [
    (await ok('/loki/api/v1/label/job/values', RANGE, h)).data,
    (await ok('/loki/api/v1/label/team/values', RANGE, h)).data,
    (await ok('/loki/api/v1/label/owner/values', RANGE, h)).data],
  series: async (h) => (await ok('/loki/api/v1/series', { 'match[]': '{job="shared"}', ...RANGE }, h)).data,
  index_stats: async (h) => {
    const s = await ok('/loki/api/v1/index/stats', { query: '{job="shared"}', ...RANGE }, h);
    return [s.streams, s.entries];
  },
  index_volume: async (h) => Promise.all(['{team=~".+"}', '{owner=~".+"}'].map(async (q) =>
    (await ok('/loki/api/v1/index/volume', { query: q, ...RANGE }, h)).data.result.map((r) => r.metric))),
  detected_labels: async (h) => (await ok('/loki/api/v1/detected_labels', { query: '{job="shared"}', ...RANGE }, h)).detectedLabels.map((l) => l.label).sort(),
  detected_fields: async (h) => (await ok('/loki/api/v1/detected_fields', { query: '{job="shared"}', ...RANGE }, h)).fields.map((f) => f.label).sort(),
  patterns: async (h) => (await ok('/loki/api/v1/patterns', { query: '{job="shared"}', ...RANGE }, h)).data.map((p) => p.pattern),
};

function expectations(me) {
  const a = me === 'a';
  const mine = a ? linesA : linesB;
  return {
    query_range: [...mine].sort(),
    query_metric: [[a ? { team: 'red' } : { owner: 'blue' }, String(N)]],
    labels: a ? ['job', 'service_name', 'team'] : ['job', 'owner', 'service_name'],
    label_values: a ? [['shared'], ['red'], []] : [['shared'], [], ['blue']],
    series: [a ? { job: 'shared', service_name: 'shared', team: 'red' } : { job: 'shared', owner: 'blue', service_name: 'shared' }],
    index_stats: [1, N],
    index_volume: a ? [[{ team: 'red' }], []] : [[], [{ owner: 'blue' }]],
    detected_labels: a ? ['job', 'service_name', 'team'] : ['job', 'owner', 'service_name'],
    detected_fields: a ? ['detected_level', 'latency', 'level', 'msg', 'user'] : ['code', 'detected_level', 'level', 'msg', 'region'],
    patterns: (ps) => {
      assert.ok(ps.length > 0);
      for (const p of ps) assert.ok(a ? p.includes('alpha') && !p.includes('beta') : p.includes('beta') && !p.includes('alpha'), p);
    },
  };
}

async function checkIsolation(when) {
  for (const [me, h] of [['a', A], ['b', B]]) {
    const want = expectations(me);
    for (const [name, fn] of Object.entries(ENDPOINTS)) {
      const got = await fn(h);
      if (typeof want[name] === 'function') want[name](got);
      else assert.deepEqual(got, want[name], `${when}: tenant ${me}, ${name}`);
    }
  }
  // a third tenant sees nothing anywhere
  const C = { 'X-Scope-OrgID': 'tenant-c' };
  assert.deepEqual(await ENDPOINTS.query_range(C), []);
  assert.deepEqual(await ENDPOINTS.labels(C), []);
  assert.deepEqual(await ENDPOINTS.series(C), []);
  assert.deepEqual(await ENDPOINTS.index_stats(C), [0, 0]);
  assert.deepEqual(await ENDPOINTS.detected_labels(C), []);
  assert.deepEqual(await ENDPOINTS.patterns(C), []);
}

test('every read endpoint shows each tenant only its own streams (heads)', async () => {
  await checkIsolation('in memory');
});

test('the same after a flush (chunks and index) and after a restart', async () => {
  const r = await request(srv, 'POST', '/flush');
  assert.equal(r.status, 204);
  await checkIsolation('after flush');
  assert.equal(await srv.stop(), 0, srv.logs);
  await srv.start();
  await checkIsolation('after restart');
});

// Opens a tail for a tenant and collects lines.
function openTail(headers, params) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/loki/api/v1/tail?${qs(params)}`, { headers });
    const t = { ws, lines: [] };
    ws.on('message', (m) => { for (const s of JSON.parse(m.toString()).streams) for (const v of s.values) t.lines.push(v[1]); });
    ws.on('open', () => resolve(t));
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.on('error', reject);
  });
}

test('tail: a tenant\'s live tail gets its own new lines, never another tenant\'s', async () => {
  const start = String(BigInt(Date.now()) * 1000000n);
  const ta = await openTail(A, { query: '{job="shared"}', start });
  const tb = await openTail(B, { query: '{job="shared"}', start });
  const t = BigInt(Date.now()) * 1000000n;
  assert.equal((await pushJSON(srv, [{ stream: { job: 'shared', team: 'red' }, values: [[String(t), 'live for A']] }], { headers: A })).status, 204);
  assert.equal((await pushJSON(srv, [{ stream: { job: 'shared', owner: 'blue' }, values: [[String(t), 'live for B']] }], { headers: B })).status, 204);
  const deadline = Date.now() + 3000;
  while ((!ta.lines.includes('live for A') || !tb.lines.includes('live for B')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200)); // time for a leak to show
  assert.deepEqual(ta.lines, ['live for A']);
  assert.deepEqual(tb.lines, ['live for B']);
  for (const t2 of [ta, tb]) t2.ws.close();
  // before the upgrade: the same tenant answers as every endpoint
  await assert.rejects(openTail({}, { query: '{job="shared"}' }), (e) => e.status === 401 && e.body === 'no org id\n');
  await assert.rejects(openTail({ 'X-Scope-OrgID': '..' }, { query: '{job="shared"}' }), (e) => e.status === 400 && e.body === "tenant ID is '.' or '..'\n");
});

test('delete API: requests and their effect belong to one tenant', async () => {
  const nowS = Math.floor(Date.now() / 1000);
  let r = await request(srv, 'POST', `/loki/api/v1/delete?${qs({ query: '{job="shared"} |= "request 3"', start: String(nowS - 7200), end: String(nowS) })}`, { headers: A });
  assert.equal(r.status, 204, r.text);
  const listA = await ok('/loki/api/v1/delete', {}, A);
  assert.equal(listA.length, 1);
  assert.equal(listA[0].query, '{job="shared"} |= "request 3"');
  assert.deepEqual(await ok('/loki/api/v1/delete', {}, B), []);
  // B cannot cancel A's request
  r = await request(srv, 'DELETE', `/loki/api/v1/delete?${qs({ request_id: listA[0].request_id })}`, { headers: B });
  assert.ok(r.status >= 400, `${r.status} ${r.text}`);
  assert.equal((await ok('/loki/api/v1/delete', {}, A)).length, 1);
  // the filter hides A's matching lines from A; B's data (same job label) is untouched
  const a = await ENDPOINTS.query_range(A);
  assert.ok(!a.some((l) => l.includes('request 3"')), 'deleted lines hidden');
  assert.ok(a.includes(linesA[4]));
  assert.ok((await ENDPOINTS.query_range(B)).includes(linesB[3]));
});

test('restore API: listings are per tenant', async () => {
  const rA = await get('/strata/api/v1/restore', {}, A);
  assert.equal(rA.status, 200, rA.text);
  assert.deepEqual(rA.json(), []);
  assert.deepEqual((await ok('/strata/api/v1/restore', {}, B)), []);
});

const ALL_PATHS = [
  ['/loki/api/v1/query_range', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/query', { query: 'count_over_time({job="shared"}[5m])' }],
  ['/loki/api/v1/labels', RANGE],
  ['/loki/api/v1/label/job/values', RANGE],
  ['/loki/api/v1/series', { 'match[]': '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/index/stats', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/index/volume', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/detected_labels', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/detected_fields', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/patterns', { query: '{job="shared"}', ...RANGE }],
  ['/loki/api/v1/delete', {}],
  ['/strata/api/v1/restore', {}],
];

test('no X-Scope-OrgID: 401 "no org id" from every endpoint, push included', async () => {
  for (const [p, params] of ALL_PATHS) {
    const r = await get(p, params, {});
    assert.equal(r.status, 401, p);
    assert.equal(r.text, 'no org id\n', p);
  }
  for (const p of ['/loki/api/v1/push', '/otlp/v1/logs']) {
    const r = await request(srv, 'POST', p, { body: '{}', headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 401, p);
  }
});

test('invalid tenant IDs: 400 with Loki\'s (dskit\'s) texts, from every endpoint', async () => {
  const cases = [
    ['.', "tenant ID is '.' or '..'"],
    ['..', "tenant ID is '.' or '..'"],
    ['a/b', "tenant ID 'a/b' contains unsupported character '/'"],
    ['../etc', "tenant ID '../etc' contains unsupported character '/'"],
    ['x'.repeat(151), 'tenant ID is too long: max 150 characters'],
    ['tenant-a|tenant-b', 'multiple org IDs present'],
    ['tenant a', "tenant ID 'tenant a' contains unsupported character ' '"],
  ];
  for (const [id, text] of cases) {
    for (const [p, params] of ALL_PATHS) {
      const r = await get(p, params, { 'X-Scope-OrgID': id });
      assert.equal(r.status, 400, `${p} ${id}`);
      assert.equal(r.text, text + '\n', `${p} ${id}`);
    }
    const r = await pushJSON(srv, [{ stream: { job: 'x' }, values: [[String(NOW), 'x']] }], { headers: { 'X-Scope-OrgID': id } });
    assert.equal(r.status, 400, id);
    assert.equal(r.text, text + '\n', id);
  }
  // the longest valid ID, and every special character Loki allows
  for (const id of ['x'.repeat(150), "a!-_.*'()z"]) {
    const r = await pushJSON(srv, [{ stream: { job: 'edge' }, values: [[String(NOW), id.slice(0, 20)]] }], { headers: { 'X-Scope-OrgID': id } });
    assert.equal(r.status, 204, `${id}: ${r.text}`);
    assert.deepEqual((await ok('/loki/api/v1/label/job/values', RANGE, { 'X-Scope-OrgID': id })).data, ['edge']);
  }
});
