// foundation.test.mjs: the single-node foundation against the real binary: push (JSON, gzip),
// query_range (selectors, line filters, limit, direction, time formats, [start, end)), labels,
// label values, series, errors with Loki's codes and texts, metrics, buildinfo, flush and restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, request, pushJSON, queryRange, qs } from './lib/strata.mjs';
import { dataset, toPush } from './lib/gen.mjs';

const NOW_NS = BigInt(Date.now()) * 1000000n;
const START = NOW_NS - 3600n * 1000000000n; // an hour ago
const DS = dataset({ seed: 42, streams: 12, n: 2400, startNs: START, stepNs: 1000000n });
const ALL = DS.flatMap((s) => s.entries.map(([ts, line]) => ({ labels: s.labels, ts: BigInt(ts), line })));

let srv;

const labelsKey = (l) => '{' + Object.keys(l).sort().map((k) => `${k}="${l[k]}"`).join(', ') + '}';

// Expected result of a log query, computed independently in JS.
function expected({ match = () => true, filter = () => true, start, end, limit = 100, forward = false }) {
  const sel = ALL.filter((e) => match(e.labels) && filter(e.line) && e.ts >= start && e.ts < end);
  sel.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : labelsKey(a.labels) < labelsKey(b.labels) ? -1 : 1));
  if (!forward) sel.reverse();
  return sel.slice(0, limit).map((e) => `${labelsKey(e.labels)} ${e.ts} ${e.line}`).sort();
}

function flatten(body) {
  assert.equal(body.status, 'success');
  assert.equal(body.data.resultType, 'streams');
  const out = [];
  for (const s of body.data.result) {
    for (const v of s.values) {
      assert.equal(v.length, 2);
      assert.equal(typeof v[0], 'string');
      out.push(`${labelsKey(s.stream)} ${v[0]} ${v[1]}`);
    }
  }
  return out.sort();
}

async function check(query, exp, extra = {}) {
  const params = { query, start: String(exp.start), end: String(exp.end), limit: String(exp.limit || 100),
    direction: exp.forward ? 'forward' : 'backward', ...extra };
  const r = await queryRange(srv, params);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(flatten(r.json()), expected(exp));
  return r.json();
}

before(async () => {
  // Loki's stream decorations (service_name, detected_level) are covered by push_formats.test.mjs;
  // here they are off so results compare with the pushed label sets directly.
  srv = await new Strata({ args: ['-limits_config.discover_service_name=', '-limits_config.discover_log_levels=false'] }).start();
  // half as plain JSON, half gzip-compressed
  const push = toPush(DS);
  const half = push.map((s) => ({ stream: s.stream, values: s.values.slice(0, s.values.length / 2) }));
  const rest = push.map((s) => ({ stream: s.stream, values: s.values.slice(s.values.length / 2) }));
  let r = await pushJSON(srv, half);
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  r = await pushJSON(srv, rest, { gzip: true });
  assert.equal(r.status, 204, r.text);
});

after(async () => {
  await srv.stop();
  srv.cleanup();
});

test('ready and buildinfo', async () => {
  const r = await request(srv, 'GET', '/ready');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'ready\n');
  const b = await request(srv, 'GET', '/loki/api/v1/status/buildinfo');
  assert.equal(b.status, 200);
  assert.deepEqual(Object.keys(b.json()), ['version', 'revision', 'branch', 'buildUser', 'buildDate', 'goVersion']);
});

test('selectors: =, !=, =~, !~ (fully anchored)', async () => {
  const end = NOW_NS;
  await check('{job="json-app"}', { match: (l) => l.job === 'json-app', start: START, end, limit: 5000 });
  await check('{env="prod", job!="json-app"}', { match: (l) => l.env === 'prod' && l.job !== 'json-app', start: START, end, limit: 5000 });
  await check('{job=~"sys.*|acc.*"}', { match: (l) => /^(sys.*|acc.*)$/.test(l.job), start: START, end, limit: 1000 });
  // anchored: "json" alone does not match "json-app"
  await check('{job=~"json"}', { match: () => false, start: START, end });
  await check('{job=~".+", host!~"web-.*"}', { match: (l) => !/^web-.*$/.test(l.host), start: START, end, limit: 300 });
});

test('line filters: |=, !=, |~, !~, chains and or', async () => {
  const end = NOW_NS;
  const base = { match: (l) => true, start: START, end, limit: 5000 };
  await check('{env=~".+"} |= "seq=1"', { ...base, filter: (s) => s.includes('seq=1') });
  await check('{env=~".+"} != "level=info"', { ...base, filter: (s) => !s.includes('level=info') });
  await check('{env=~".+"} |~ "status=(404|500)"', { ...base, filter: (s) => /status=(404|500)/.test(s) });
  await check('{env=~".+"} !~ "GET|POST"', { ...base, filter: (s) => !/GET|POST/.test(s) });
  await check('{env=~".+"} |= "seq=" != "info" |~ "error|ERROR"', { ...base, filter: (s) => s.includes('seq=') && !s.includes('info') && /error|ERROR/.test(s) });
  await check('{env=~".+"} |= "sshd" or "CRON"', { ...base, filter: (s) => s.includes('sshd') || s.includes('CRON') });
  await check('{env=~".+"} != "sshd" or "CRON"', { ...base, filter: (s) => !s.includes('sshd') && !s.includes('CRON') });
  await check('{env=~".+"} |~ "(?i)failed"', { ...base, filter: (s) => /failed/i.test(s) });
  await check('{env=~".+"} |= "ünïcode"', { ...base, filter: (s) => s.includes('ünïcode') });
  await check('{env=~".+"} |= ""', { ...base, limit: 50 });
});

test('limit and direction across streams', async () => {
  const end = NOW_NS;
  for (const forward of [false, true]) {
    for (const limit of [1, 7, 100, 1000]) {
      const body = await check('{env=~"prod|dev"}', { start: START, end, limit, forward });
      assert.equal(body.data.stats.summary.totalEntriesReturned, limit);
      // within each stream, values are in the requested direction
      for (const s of body.data.result) {
        const ts = s.values.map((v) => BigInt(v[0]));
        for (let i = 1; i < ts.length; i++) assert.ok(forward ? ts[i - 1] <= ts[i] : ts[i - 1] >= ts[i]);
      }
    }
  }
});

test('start is inclusive, end exclusive; every time format', async () => {
  const e = ALL.filter((x) => x.labels.job === 'logfmt-app').sort((a, b) => (a.ts < b.ts ? -1 : 1));
  const s = e[10].ts, t = e[20].ts;
  const body = await check('{job="logfmt-app"}', { match: (l) => l.job === 'logfmt-app', start: s, end: t, limit: 100, forward: true });
  const got = body.data.result.flatMap((x) => x.values.map((v) => BigInt(v[0])));
  assert.ok(got.includes(s));
  assert.ok(!got.includes(t));
  // seconds (<= 10 digits), float seconds, RFC3339 and RFC3339Nano describe the same range
  const secStart = START / 1000000000n, secEnd = NOW_NS / 1000000000n + 1n;
  const want = expected({ match: (l) => l.job === 'syslog-app', start: secStart * 1000000000n, end: secEnd * 1000000000n, limit: 5000 });
  const forms = [
    [String(secStart), String(secEnd)],
    [`${secStart}.000`, `${secEnd}.000`],
    [new Date(Number(secStart) * 1000).toISOString().replace('.000', ''), new Date(Number(secEnd) * 1000).toISOString()],
    [(secStart * 1000000000n).toString(), (secEnd * 1000000000n).toString()],
  ];
  for (const [a, b] of forms) {
    const r = await queryRange(srv, { query: '{job="syslog-app"}', start: a, end: b, limit: '5000' });
    assert.equal(r.status, 200, `${a} ${b}: ${r.text}`);
    assert.deepEqual(flatten(r.json()), want, `${a} ${b}`);
  }
  // since: the last 2 hours
  const r = await queryRange(srv, { query: '{job="syslog-app"}', since: '2h', limit: '5000' });
  assert.equal(r.status, 200);
  assert.equal(flatten(r.json()).length, ALL.filter((x) => x.labels.job === 'syslog-app').length);
  // POST form
  const p = await request(srv, 'POST', '/loki/api/v1/query_range', {
    body: qs({ query: '{job="syslog-app"}', start: String(START), end: String(NOW_NS), limit: '5000' }),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(flatten(p.json()), expected({ match: (l) => l.job === 'syslog-app', start: START, end: NOW_NS, limit: 5000 }));
});

test('stats.summary carries real numbers', async () => {
  const r = await queryRange(srv, { query: '{job="access-app"} |= "POST"', start: String(START), end: String(NOW_NS), limit: '10' });
  const st = r.json().data.stats;
  for (const k of ['bytesProcessedPerSecond', 'linesProcessedPerSecond', 'totalBytesProcessed', 'totalLinesProcessed',
    'execTime', 'queueTime', 'subqueries', 'totalEntriesReturned', 'splits', 'shards', 'totalPostFilterLines',
    'totalStructuredMetadataBytesProcessed']) assert.ok(k in st.summary, k);
  assert.ok(st.summary.totalLinesProcessed >= 10);
  assert.ok(st.summary.totalBytesProcessed > 0);
  assert.equal(st.summary.totalEntriesReturned, 10);
  assert.ok(st.summary.totalPostFilterLines >= 10);
  assert.ok('querier' in st && 'ingester' in st && 'cache' in st);
});

test('labels, label values, series', async () => {
  const range = { start: String(START), end: String(NOW_NS) };
  let r = await request(srv, 'GET', `/loki/api/v1/labels?${qs(range)}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), { status: 'success', data: ['env', 'format', 'host', 'job'] });
  r = await request(srv, 'GET', `/loki/api/v1/label/job/values?${qs(range)}`);
  assert.deepEqual(r.json().data, ['access-app', 'json-app', 'logfmt-app', 'syslog-app']);
  r = await request(srv, 'GET', `/loki/api/v1/label/host/values?${qs({ ...range, query: '{env="prod"}' })}`);
  const prodHosts = [...new Set(DS.filter((s) => s.labels.env === 'prod').map((s) => s.labels.host))].sort();
  assert.deepEqual(r.json().data, prodHosts);
  r = await request(srv, 'GET', `/loki/api/v1/label/nope/values?${qs(range)}`);
  assert.deepEqual(r.json(), { status: 'success', data: [] });
  r = await request(srv, 'GET', `/loki/api/v1/series?${qs(range)}&${qs({ 'match[]': '{job="json-app"}' })}&${qs({ 'match[]': '{env="prod"}' })}`);
  assert.equal(r.status, 200, r.text);
  const want = DS.filter((s) => s.labels.job === 'json-app' || s.labels.env === 'prod').map((s) => labelsKey(s.labels)).sort();
  assert.deepEqual(r.json().data.map(labelsKey).sort(), want);
  r = await request(srv, 'GET', `/loki/api/v1/series?${qs(range)}`);
  assert.equal(r.json().data.length, new Set(DS.map((s) => labelsKey(s.labels))).size);
  // a range with no data
  r = await request(srv, 'GET', `/loki/api/v1/labels?${qs({ start: '1000', end: '2000' })}`);
  assert.deepEqual(r.json(), { status: 'success', data: [] });
});

test('errors: Loki codes and texts', async () => {
  let r = await queryRange(srv, { query: '{job="x"' });
  assert.equal(r.status, 400);
  assert.match(r.text, /^parse error at line 1, col \d+: /);
  r = await queryRange(srv, { query: '{}' });
  assert.equal(r.status, 400);
  assert.match(r.text, /queries require at least one regexp or equality matcher/);
  r = await queryRange(srv, { query: '{a="b"}', direction: 'sideways' });
  assert.equal(r.status, 400);
  assert.equal(r.text, "invalid direction 'sideways'");
  r = await queryRange(srv, { query: '{a="b"}', limit: '0' });
  assert.equal(r.text, 'limit must be a positive value');
  r = await queryRange(srv, { query: '{a="b"}', limit: '5001' });
  assert.equal(r.text, 'max entries limit per query exceeded, limit > max_entries_limit_per_query (5001 > 5000)');
  r = await queryRange(srv, { query: '{a="b"}', start: '2000', end: '1000' });
  assert.equal(r.text, 'end timestamp must not be before or equal to start time');
  r = await queryRange(srv, { query: '{a="b"}', start: 'yesterday' });
  assert.equal(r.status, 400);
  r = await request(srv, 'GET', `/loki/api/v1/query?${qs({ query: '{job="json-app"}' })}`);
  assert.equal(r.status, 400);
  assert.equal(r.text, 'log queries are not supported as an instant query type, please change your query to a range query type');
  r = await request(srv, 'GET', '/loki/api/v1/nope');
  assert.equal(r.status, 404);
  assert.equal(r.text, '404 page not found\n');
  r = await request(srv, 'GET', '/loki/api/v1/push');
  assert.equal(r.status, 405);
  r = await request(srv, 'POST', '/loki/api/v1/push', { body: '{"streams": [', headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 400);
  assert.ok(r.text.length > 0);
  r = await pushJSON(srv, [{ stream: { a: 'b' }, values: [[1, 'numeric timestamp']] }]);
  assert.equal(r.status, 400);
  r = await request(srv, 'POST', '/loki/api/v1/push', { body: 'x', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'br' } });
  assert.equal(r.status, 400);
  assert.equal(r.text, 'Content-Encoding br not supported\n');
  r = await pushJSON(srv, []);
  assert.equal(r.status, 422);
});

test('partial acceptance: valid entries stored, 400 lists the rest', async () => {
  const now = BigInt(Date.now()) * 1000000n;
  const old = now - 30n * 24n * 3600n * 1000000000n;
  const r = await pushJSON(srv, [
    { stream: { job: 'partial' }, values: [[String(now), 'kept line'], [String(old), 'too old line']] },
    { stream: {}, values: [[String(now), 'no labels']] },
  ]);
  assert.equal(r.status, 400);
  assert.match(r.text, /entry for stream '\{job="partial"\}' has timestamp too old/);
  assert.match(r.text, /error at least one label pair is required per stream/);
  const q = await queryRange(srv, { query: '{job="partial"}', start: String(now - 1000n), end: String(now + 1000n) });
  assert.deepEqual(q.json().data.result.map((s) => s.values.map((v) => v[1])), [['kept line']]);
});

test('metrics in Prometheus text format', async () => {
  const r = await request(srv, 'GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);
  for (const m of ['strata_http_requests_total', 'strata_http_request_duration_seconds_bucket',
    'strata_distributor_lines_received_total', 'strata_ingester_entries_total', 'strata_wal_fsyncs_total',
    'strata_querier_requests_total', 'strata_wal_fsync_duration_seconds_bucket']) {
    assert.ok(r.text.includes(m), m);
  }
  assert.match(r.text, /# TYPE strata_http_requests_total counter/);
});

test('flush, then SIGTERM and restart: everything still there, from chunks', async () => {
  const want = expected({ start: START, end: NOW_NS, limit: 5000, forward: true });
  let r = await request(srv, 'POST', '/flush');
  assert.equal(r.status, 204);
  r = await queryRange(srv, { query: '{env=~".+"}', start: String(START), end: String(NOW_NS), limit: '5000', direction: 'forward' });
  assert.deepEqual(flatten(r.json()), want);
  assert.ok(r.json().data.stats.querier.store.totalChunksRef > 0);
  const code = await srv.stop();
  assert.equal(code, 0, srv.logs);
  await srv.start();
  r = await queryRange(srv, { query: '{env=~".+"}', start: String(START), end: String(NOW_NS), limit: '5000', direction: 'forward' });
  assert.deepEqual(flatten(r.json()), want);
});
