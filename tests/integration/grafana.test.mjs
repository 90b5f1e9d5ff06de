// grafana.test.mjs: replays the requests Grafana's Loki data source and the Logs Drilldown app send
// (reference section 4) against the real binary and checks the response fields they read: "Save &
// test" (vector(1)+vector(1) and the older labels call), Explore's log query and log volume, log
// context, the label browser, the index/stats size hint, Drilldown's index/volume, detected_labels,
// detected_fields, detected_field values, patterns (ISO-8601 times) and drilldown-limits, plus
// format_query and the legacy /api/prom aliases.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, request, pushJSON, qs } from './lib/strata.mjs';
import { dataset, toPush } from './lib/gen.mjs';

const SEC = 1000000000n;
const NOW = BigInt(Date.now()) * 1000000n;
const START = NOW - 1800n * SEC;
const DS = dataset({ seed: 7, streams: 8, n: 1600, startNs: START, stepNs: SEC });
const iso = (ns) => new Date(Number(ns / 1000000n)).toISOString();
const RANGE = { start: String(START - SEC), end: String(NOW + SEC) };
const ISO_RANGE = { start: iso(START - SEC), end: iso(NOW + SEC) };

let srv;

before(async () => {
  srv = await new Strata().start();
  const r = await pushJSON(srv, toPush(DS));
  assert.equal(r.status, 204, r.text);
});

after(async () => {
  await srv.stop();
  srv.cleanup();
});

const get = async (path, params, headers) => {
  const r = await request(srv, 'GET', `${path}?${qs(params)}`, { headers });
  return r;
};
const ok = async (path, params, headers) => {
  const r = await get(path, params, headers);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json();
};
const entriesOf = (job) => DS.filter((s) => s.labels.job === job).flatMap((s) => s.entries);

test('Save & test: vector(1)+vector(1) at time=4000000000, and the older labels check', async () => {
  const r = await request(srv, 'GET', '/loki/api/v1/query?direction=backward&query=vector%281%29%2Bvector%281%29&time=4000000000');
  assert.equal(r.status, 200, r.text);
  const b = r.json();
  assert.equal(b.status, 'success');
  assert.equal(b.data.resultType, 'vector');
  assert.equal(b.data.result.length, 1); // one frame, one row
  assert.deepEqual(b.data.result[0].metric, {});
  // a JSON number of seconds; Loki reads the 10-digit "4000000000" as Unix seconds, and so do we
  assert.equal(b.data.result[0].value[0], 4000000000);
  assert.equal(b.data.result[0].value[1], '2'); // the value as a string
  const l = await ok('/loki/api/v1/labels', { start: String(NOW - 600n * SEC), end: String(NOW) });
  assert.equal(l.status, 'success');
});

test('Explore: a log query and the log volume histogram (logvolhist)', async () => {
  const b = await ok('/loki/api/v1/query_range', { direction: 'backward', limit: '1000', query: '{job="logfmt-app"}',
    ...RANGE, step: '7200ms' });
  assert.equal(b.data.resultType, 'streams');
  const n = b.data.result.reduce((k, s) => k + s.values.length, 0);
  assert.equal(n, Math.min(1000, entriesOf('logfmt-app').length));
  for (const s of b.data.result) for (const v of s.values) assert.ok(typeof v[0] === 'string' && typeof v[1] === 'string');
  const vol = await ok('/loki/api/v1/query_range', {
    direction: 'backward', limit: '1000', step: '60000ms', ...RANGE,
    query: 'sum by (level, detected_level) (count_over_time({job="logfmt-app"} | drop __error__ [1m]))',
  }, { 'X-Query-Tags': 'Source=logvolhist' });
  assert.equal(vol.data.resultType, 'matrix');
  let total = 0;
  for (const s of vol.data.result) {
    assert.ok('detected_level' in s.metric, JSON.stringify(s.metric));
    for (const [t, v] of s.values) {
      assert.equal(typeof t, 'number');
      assert.equal(typeof v, 'string');
    }
    // count_over_time windows of 1m at a 1m step: each line counted once
    total += s.values.reduce((k, [, v]) => k + Number(v), 0);
  }
  assert.equal(total, entriesOf('logfmt-app').length);
});

test('log context: two query_range calls around a row with its index labels', async () => {
  const labels = (await ok('/loki/api/v1/labels', RANGE)).data;
  const b = await ok('/loki/api/v1/query_range', { direction: 'backward', limit: '50', query: '{job="json-app"} |= "order"', ...RANGE });
  const s = b.data.result.reduce((x, y) => (y.values.length > x.values.length ? y : x));
  const row = s.values[Math.floor(s.values.length / 2)];
  const rowTs = BigInt(row[0]);
  // Grafana builds the selector from the row's index labels (those /labels returns) plus the parser
  const sel = '{' + Object.keys(s.stream).filter((k) => labels.includes(k)).sort().map((k) => `${k}="${s.stream[k]}"`).join(',') + '}';
  const before = await ok('/loki/api/v1/query_range', { query: sel, direction: 'backward', limit: '10',
    start: String(rowTs - 7200n * SEC), end: String(rowTs) });
  const after = await ok('/loki/api/v1/query_range', { query: sel, direction: 'forward', limit: '10',
    start: String(rowTs), end: String(rowTs + 7200n * SEC) });
  const bv = before.data.result.flatMap((x) => x.values.map((v) => BigInt(v[0])));
  const av = after.data.result.flatMap((x) => x.values.map((v) => BigInt(v[0])));
  assert.equal(bv.length, 10);
  assert.ok(bv.every((t) => t < rowTs), 'before: strictly older (end is exclusive)');
  assert.ok(bv.every((t, i) => i === 0 || t < bv[i - 1]), 'before: newest first');
  assert.equal(av[0], rowTs, 'after: starts at the row (start is inclusive)');
  assert.ok(av.every((t, i) => i === 0 || t > av[i - 1]), 'after: oldest first');
});

test('label browser: labels, label values with a selector, series', async () => {
  const names = (await ok('/loki/api/v1/labels', RANGE)).data;
  for (const k of ['env', 'format', 'host', 'job', 'service_name']) assert.ok(names.includes(k), k);
  const vals = (await ok('/loki/api/v1/label/host/values', { ...RANGE, query: '{env="prod"}' })).data;
  const want = [...new Set(DS.filter((s) => s.labels.env === 'prod').map((s) => s.labels.host))].sort();
  assert.deepEqual(vals, want);
  const series = (await ok('/loki/api/v1/series', { 'match[]': '{job="json-app"}', ...RANGE })).data;
  assert.equal(series.length, DS.filter((s) => s.labels.job === 'json-app').length);
  for (const x of series) assert.equal(x.job, 'json-app');
});

test('query-size hint: index/stats per stream selector', async () => {
  const b = await ok('/loki/api/v1/index/stats', { query: '{job="json-app"}', ...RANGE });
  assert.deepEqual(Object.keys(b).sort(), ['bytes', 'chunks', 'entries', 'streams']);
  assert.equal(b.streams, DS.filter((s) => s.labels.job === 'json-app').length);
  assert.equal(b.entries, entriesOf('json-app').length);
  assert.ok(b.bytes >= entriesOf('json-app').reduce((k, e) => k + e[1].length, 0));
  assert.ok(b.chunks >= 1);
  const none = await ok('/loki/api/v1/index/stats', { query: '{job="nope"}', ...RANGE });
  assert.deepEqual(none, { streams: 0, chunks: 0, bytes: 0, entries: 0 });
  const bad = await get('/loki/api/v1/index/stats', { query: '{job=', ...RANGE });
  assert.equal(bad.status, 400);
});

test('Drilldown: index/volume of services (ISO-8601 times), aggregateBy, volume_range', async () => {
  const b = await ok('/loki/api/v1/index/volume', { query: '{service_name=~".+"}', limit: '5000', ...ISO_RANGE });
  assert.equal(b.status, 'success');
  assert.equal(b.data.resultType, 'vector');
  const jobs = [...new Set(DS.map((s) => s.labels.job))].sort();
  assert.deepEqual(b.data.result.map((x) => x.metric.service_name).sort(), jobs);
  const vols = b.data.result.map((x) => Number(x.value[1]));
  assert.ok(vols.every((v, i) => i === 0 || v <= vols[i - 1]), 'largest first');
  assert.equal(typeof b.data.result[0].value[0], 'number');
  const top = await ok('/loki/api/v1/index/volume', { query: '{service_name=~".+"}', limit: '2', ...ISO_RANGE });
  assert.equal(top.data.result.length, 2);
  const byLabels = await ok('/loki/api/v1/index/volume', { query: '{job="json-app"}', aggregateBy: 'labels', ...ISO_RANGE });
  assert.ok(byLabels.data.result.some((x) => JSON.stringify(x.metric) === '{"host":""}'));
  const targeted = await ok('/loki/api/v1/index/volume', { query: '{env="prod"}', targetLabels: 'job', ...ISO_RANGE });
  for (const x of targeted.data.result) assert.deepEqual(Object.keys(x.metric), ['job']);
  const bad = await get('/loki/api/v1/index/volume', { query: '{job="x"}', aggregateBy: 'pods', ...ISO_RANGE });
  assert.equal(bad.status, 400);
  assert.equal(bad.text, 'invalid aggregation option');
  const range = await ok('/loki/api/v1/index/volume_range', { query: '{job="json-app"}', step: '60', ...RANGE });
  assert.equal(range.data.resultType, 'matrix');
  const sum = range.data.result[0].values.reduce((k, [, v]) => k + Number(v), 0);
  assert.ok(sum > 0);
});

test('Drilldown: detected_labels, detected_fields and field values', async () => {
  const dl = await ok('/loki/api/v1/detected_labels', { query: '{service_name="logfmt-app"}', ...ISO_RANGE });
  const byName = Object.fromEntries(dl.detectedLabels.map((x) => [x.label, x.cardinality]));
  const streams = DS.filter((s) => s.labels.job === 'logfmt-app');
  assert.equal(byName.host, new Set(streams.map((s) => s.labels.host)).size);
  assert.equal(byName.job, 1);
  const all = await ok('/loki/api/v1/detected_labels', { ...ISO_RANGE });
  assert.ok(all.detectedLabels.some((x) => x.label === 'env' && x.cardinality === 2));

  const df = await ok('/loki/api/v1/detected_fields', { query: '{service_name="logfmt-app"}', limit: '1000', ...ISO_RANGE });
  assert.equal(df.limit, 1000);
  const f = Object.fromEntries(df.fields.map((x) => [x.label, x]));
  assert.equal(f.status.type, 'int');
  assert.deepEqual(f.status.parsers, ['logfmt']);
  assert.equal(f.status.cardinality, 3);
  assert.equal(f.duration.type, 'duration');
  assert.equal(f.msg.type, 'string');
  assert.equal(f.detected_level.parsers, null, 'structured metadata has no parser');
  const dj = await ok('/loki/api/v1/detected_fields', { query: '{service_name="json-app"}', line_limit: '200', ...ISO_RANGE });
  const j = Object.fromEntries(dj.fields.map((x) => [x.label, x]));
  assert.equal(j.latency_ms.type, 'int');
  assert.deepEqual(j.latency_ms.parsers, ['json']);
  assert.deepEqual(j.latency_ms.jsonPath, ['latency_ms']);
  assert.equal(j.tags, undefined, 'arrays are not fields');
  const vals = await ok('/loki/api/v1/detected_field/status/values', { query: '{service_name="logfmt-app"}', ...ISO_RANGE });
  assert.deepEqual([...vals.values].sort(), ['200', '404', '500']);
  const bad = await get('/loki/api/v1/detected_fields', { query: '{service_name="x"}', line_limit: '0', ...ISO_RANGE });
  assert.equal(bad.status, 400);
});

test('Drilldown: patterns with per-step sample counts, and drilldown-limits', async () => {
  const b = await ok('/loki/api/v1/patterns', { query: '{service_name="syslog-app"}', step: '30s', ...ISO_RANGE });
  assert.equal(b.status, 'success');
  assert.ok(b.data.length > 0);
  let total = 0;
  for (const p of b.data) {
    assert.equal(typeof p.pattern, 'string');
    assert.equal(typeof p.level, 'string');
    for (const [t, c] of p.samples) {
      assert.ok(Number.isInteger(t) && Number.isInteger(c) && c > 0);
      assert.equal(t % 30, 0, 'step-aligned');
    }
    total += p.samples.reduce((k, [, c]) => k + c, 0);
  }
  assert.ok(b.data.some((p) => p.pattern.includes('<_>')), JSON.stringify(b.data.map((p) => p.pattern)));
  assert.ok(total > 0 && total <= entriesOf('syslog-app').length);
  const lim = await ok('/loki/api/v1/drilldown-limits', {});
  assert.equal(typeof lim.limits, 'object');
  assert.equal(lim.limits.volume_enabled, true);
  assert.equal(lim.limits.max_query_length, '30d1h');
  assert.ok(Array.isArray(lim.limits.discover_service_name));
  assert.equal(typeof lim.pattern_ingester_enabled, 'boolean');
  assert.equal(typeof lim.version, 'string');
});

test('categorize-labels query_range: encodingFlags before result, three-element values', async () => {
  const r = await get('/loki/api/v1/query_range', { query: '{job="logfmt-app"} | logfmt', limit: '5', ...RANGE },
    { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' });
  assert.equal(r.status, 200);
  assert.ok(r.text.indexOf('"encodingFlags"') < r.text.indexOf('"result"'));
  const b = r.json();
  assert.deepEqual(b.data.encodingFlags, ['categorize-labels']);
  for (const s of b.data.result) for (const v of s.values) assert.equal(v.length, 3);
});

test('format_query, and the legacy /api/prom aliases', async () => {
  const f = await ok('/loki/api/v1/format_query', { query: '{job="a"}|="x"' });
  assert.deepEqual(f, { status: 'success', data: '{job="a"} |= "x"' });
  const bad = await get('/loki/api/v1/format_query', { query: '{job=' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json().status, 'invalid-query');
  assert.match(bad.json().error, /^parse error/);
  const q = await ok('/api/prom/query', { query: '{job="json-app"}', limit: '3', ...RANGE });
  assert.equal(q.streams.reduce((k, s) => k + s.entries.length, 0), 3);
  assert.match(q.streams[0].labels, /^\{.*job="json-app".*\}$/);
  assert.match(q.streams[0].entries[0].ts, /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.ok('stats' in q);
  const l = await ok('/api/prom/label', RANGE);
  assert.ok(l.values.includes('job'));
  const v = await ok('/api/prom/label/env/values', RANGE);
  assert.deepEqual(v.values, ['dev', 'prod']);
  const s = await ok('/api/prom/series', { 'match[]': '{job="json-app"}', ...RANGE });
  assert.equal(s.status, 'success');
  const m = await get('/api/prom/query', { query: 'rate({job="x"}[1m])', ...RANGE });
  assert.equal(m.status, 400);
  const c = await request(srv, 'GET', '/config?mode=diff');
  assert.equal(c.status, 200);
  assert.match(c.text, /http_listen_port: \d+/);
  assert.doesNotMatch(c.text, /max_entries_limit_per_query/);
  const d = await request(srv, 'GET', '/config?mode=defaults');
  assert.match(d.text, /http_listen_port: 3100/);
});

test('after a flush: index/stats, volume and detected_labels read chunk references from the index', async () => {
  const before = await ok('/loki/api/v1/index/stats', { query: '{job=~".+"}', ...RANGE });
  const volBefore = await ok('/loki/api/v1/index/volume', { query: '{job=~".+"}', ...RANGE });
  const r = await request(srv, 'POST', '/flush');
  assert.equal(r.status, 204);
  const after = await ok('/loki/api/v1/index/stats', { query: '{job=~".+"}', ...RANGE });
  assert.equal(after.streams, before.streams);
  assert.equal(after.entries, DS.reduce((k, s) => k + s.entries.length, 0));
  assert.ok(after.chunks >= after.streams);
  const volAfter = await ok('/loki/api/v1/index/volume', { query: '{job=~".+"}', ...RANGE });
  assert.deepEqual(volAfter.data.result.map((x) => x.metric.job).sort(), volBefore.data.result.map((x) => x.metric.job).sort());
  const dl = await ok('/loki/api/v1/detected_labels', { query: '{job=~".+"}', ...RANGE });
  assert.ok(dl.detectedLabels.some((x) => x.label === 'host'));
  const p = await ok('/loki/api/v1/patterns', { query: '{job="logfmt-app"}', step: '60s', ...RANGE });
  assert.ok(p.data.length > 0);
});
