// metric.test.mjs: LogQL metric queries against the real binary: entries with known timestamps are
// pushed, then count_over_time / rate / sum by / topk / binary operators run through
// /loki/api/v1/query_range and /loki/api/v1/query and are compared with values computed here;
// Grafana's health check on an empty server; Grafana's log-volume query; Loki's error texts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, request, pushJSON, queryRange, qs } from './lib/strata.mjs';

const SEC = 1000000000n;
// a whole minute, 30 minutes ago (well inside reject_old_samples_max_age)
const B = (BigInt(Date.now()) / 60000n) * 60n * SEC - 1800n * SEC;
// app -> entries [tsNs, line]: a every 10s, b every 20s, c every 50s, for 10 minutes
const SPEC = { a: 10n, b: 20n, c: 50n };
const DATA = {};
for (const [app, every] of Object.entries(SPEC)) {
  DATA[app] = [];
  for (let t = 0n; t < 600n; t += every) {
    const i = Number(t / every);
    DATA[app].push([B + t * SEC, `GET /items/${i} took=${i % 7}ms${i % 4 === 0 ? ' error' : ''} app=${app}`]);
  }
}

let srv;

const sec = (ns) => Number(ns / SEC);
const steps = (start, end, step) => {
  const out = [];
  for (let t = start; t <= end; t += step) out.push(t);
  return out;
};
// entries of app in the window (t-range, t]
const inWindow = (app, t, range, filter = () => true) =>
  DATA[app].filter(([ts, line]) => ts > t - range && ts <= t && filter(line));

// {app -> [[seconds, value], ...]} from a matrix, summing series of the same app (extra labels such as
// service_name or detected_level may split a stream into several series)
function byApp(body) {
  assert.equal(body.status, 'success');
  assert.equal(body.data.resultType, 'matrix');
  const acc = {};
  for (const s of body.data.result) {
    const app = s.metric.app ?? '';
    acc[app] ??= new Map();
    for (const [t, v] of s.values) acc[app].set(t, (acc[app].get(t) ?? 0) + Number(v));
  }
  const out = {};
  for (const [app, m] of Object.entries(acc)) out[app] = [...m.entries()].sort((x, y) => x[0] - y[0]);
  return out;
}

function expectedByApp(apps, start, end, step, range, value) {
  const out = {};
  for (const app of apps) {
    const pts = [];
    for (const t of steps(start, end, step)) {
      const v = value(app, t, range);
      if (v !== null) pts.push([sec(t), v]);
    }
    if (pts.length) out[app] = pts;
  }
  return out;
}

const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
function assertClose(got, want) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const app of Object.keys(want)) {
    assert.equal(got[app].length, want[app].length, `points of ${app}`);
    got[app].forEach(([t, v], i) => {
      assert.equal(t, want[app][i][0], `timestamp ${i} of ${app}`);
      assert.ok(close(v, want[app][i][1]), `${app} at ${t}: ${v} != ${want[app][i][1]}`);
    });
  }
}

async function range(query, start, end, step) {
  const r = await queryRange(srv, { query, start: String(start), end: String(end), step: `${sec(step)}s` });
  assert.equal(r.status, 200, r.text);
  return r.json();
}

async function instant(query, time, server = srv) {
  const r = await request(server, 'GET', `/loki/api/v1/query?${qs({ query, time: String(time) })}`);
  assert.equal(r.status, 200, r.text);
  return r.json();
}

before(async () => {
  srv = await new Strata().start();
  const streams = Object.entries(DATA).map(([app, values]) => ({
    stream: { job: 'mx', app },
    values: values.map(([ts, line]) => [String(ts), line]),
  }));
  // the first half ends up in chunk files, the rest stays in the ingester's memory
  const half = (f) => streams.map((s) => ({ stream: s.stream, values: f(s.values) }));
  let r = await pushJSON(srv, half((v) => v.slice(0, v.length / 2)));
  assert.equal(r.status, 204, r.text);
  r = await request(srv, 'POST', '/flush');
  assert.ok(r.status === 200 || r.status === 204, r.text);
  r = await pushJSON(srv, half((v) => v.slice(v.length / 2)));
  assert.equal(r.status, 204, r.text);
});

after(async () => {
  await srv.stop();
  srv.cleanup();
});

const ALL = Object.keys(SPEC);
const count = (app, t, rng, f) => {
  const n = inWindow(app, t, rng, f).length;
  return n ? n : null;
};

test('count_over_time and sum by over query_range (windows (t-range, t], end inclusive)', async () => {
  const start = B + 60n * SEC, end = B + 600n * SEC, step = 60n * SEC, rng = 60n * SEC;
  const want = expectedByApp(ALL, start, end, step, rng, count);
  const body = await range('sum by (app) (count_over_time({job="mx"}[1m]))', start, end, step);
  for (const s of body.data.result) assert.deepEqual(Object.keys(s.metric), ['app']);
  assertClose(byApp(body), want);
  // without grouping: one series per full label set; the stream's labels are all there
  const raw = await range('count_over_time({job="mx"}[1m])', start, end, step);
  for (const s of raw.data.result) assert.equal(s.metric.job, 'mx');
  assertClose(byApp(raw), want);
  // step that does not divide the range: the last point is the last step <= end
  const odd = await range('sum by (app) (count_over_time({job="mx"}[1m]))', start, end - 1n * SEC, 70n * SEC);
  assertClose(byApp(odd), expectedByApp(ALL, start, end - SEC, 70n * SEC, rng, count));
});

test('rate (no extrapolation), line filters, overlapping windows and offset', async () => {
  const start = B + 120n * SEC, end = B + 600n * SEC, step = 30n * SEC, rng = 120n * SEC;
  const errs = (l) => l.includes('error');
  const want = expectedByApp(ALL, start, end, step, rng, (app, t, r) => {
    const n = inWindow(app, t, r, errs).length;
    return n ? n / 120 : null;
  });
  assertClose(byApp(await range('sum by (app) (rate({job="mx"} |= "error" [2m]))', start, end, step)), want);
  // bytes_over_time counts the line bytes
  const bytes = expectedByApp(ALL, start, end, step, rng, (app, t, r) => {
    const es = inWindow(app, t, r);
    return es.length ? es.reduce((s, [, l]) => s + Buffer.byteLength(l), 0) : null;
  });
  assertClose(byApp(await range('sum by (app) (bytes_over_time({job="mx"}[2m]))', start, end, step)), bytes);
  // offset 1m: the window moves back, the timestamps stay
  const off = expectedByApp(ALL, start, end, step, 60n * SEC, (app, t, r) => count(app, t - 60n * SEC, r));
  assertClose(byApp(await range('sum by (app) (count_over_time({job="mx"}[1m] offset 1m))', start, end, step)), off);
});

test('topk, binary operators and instant queries', async () => {
  const t = B + 600n * SEC, rng = 300n * SEC;
  const n = (app) => inWindow(app, t, rng).length;
  // instant topk keeps the series' labels (sorted by labels in the answer)
  let body = await instant('topk(2, sum by (app) (count_over_time({job="mx"}[5m])))', t);
  assert.equal(body.data.resultType, 'vector');
  const top = ALL.map((a) => [a, n(a)]).sort((x, y) => y[1] - x[1]).slice(0, 2).map(([a]) => a).sort();
  assert.deepEqual(body.data.result.map((s) => s.metric.app), top);
  for (const s of body.data.result) {
    assert.equal(s.value[0], sec(t));
    assert.equal(s.value[1], String(n(s.metric.app)));
  }
  body = await instant('sum(count_over_time({job="mx"}[5m]))', t);
  assert.deepEqual(body.data.result, [{ metric: {}, value: [sec(t), String(n('a') + n('b') + n('c'))] }]);
  // a / b per step over a range
  const start = B + 60n * SEC, end = B + 600n * SEC, step = 60n * SEC;
  body = await range('sum(count_over_time({job="mx", app="a"}[1m])) / sum(count_over_time({job="mx", app="b"}[1m]))', start, end, step);
  assert.equal(body.data.result.length, 1);
  assert.deepEqual(body.data.result[0].metric, {});
  const ratio = steps(start, end, step).map((x) => [sec(x), inWindow('a', x, 60n * SEC).length / inWindow('b', x, 60n * SEC).length]);
  assertClose({ '': body.data.result[0].values.map(([x, v]) => [x, Number(v)]) }, { '': ratio });
  // share of each app: many-to-one matching with on() group_left
  body = await instant('sum by (app) (count_over_time({job="mx"}[5m])) / on() group_left sum(count_over_time({job="mx"}[5m]))', t);
  const total = n('a') + n('b') + n('c');
  assert.deepEqual(body.data.result.map((s) => s.metric.app), ['a', 'b', 'c']);
  for (const s of body.data.result) assert.ok(close(Number(s.value[1]), n(s.metric.app) / total));
  // comparison filters keep the left value; bool gives 0/1
  body = await instant('sum by (app) (count_over_time({job="mx"}[5m])) > 10', t);
  assert.deepEqual(body.data.result.map((s) => [s.metric.app, s.value[1]]), ALL.filter((a) => n(a) > 10).map((a) => [a, String(n(a))]));
  body = await instant('sum by (app) (count_over_time({job="mx"}[5m])) > bool 10', t);
  assert.deepEqual(body.data.result.map((s) => [s.metric.app, s.value[1]]), ALL.map((a) => [a, n(a) > 10 ? '1' : '0']));
  // literals: 1+1 is a scalar
  body = await instant('1+1', t);
  assert.equal(body.data.resultType, 'scalar');
  assert.deepEqual(body.data.result, [sec(t), '2']);
  // response keys in Loki's order
  assert.deepEqual(Object.keys(body.data), ['resultType', 'result', 'stats']);
});

test('Grafana health check on an empty server', async () => {
  const empty = await new Strata().start();
  try {
    const r = await request(empty, 'GET', '/loki/api/v1/query?direction=backward&query=vector%281%29%2Bvector%281%29&time=4000000000');
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /application\/json/);
    const body = r.json();
    assert.equal(body.status, 'success');
    assert.deepEqual(Object.keys(body.data), ['resultType', 'result', 'stats']);
    assert.equal(body.data.resultType, 'vector');
    assert.equal(body.data.result.length, 1);
    assert.deepEqual(body.data.result[0].metric, {});
    // Loki reads a 10-digit time as seconds (loghttp.parseTimestamp), so the point is at 4e9 s
    assert.deepEqual(body.data.result[0].value, [4000000000, '2']);
    assert.equal(typeof body.data.stats.summary.execTime, 'number');
  } finally {
    await empty.stop();
    empty.cleanup();
  }
});

test('Grafana log volume query returns a matrix', async () => {
  const start = B, end = B + 600n * SEC, step = 60n * SEC;
  const r = await queryRange(srv, {
    query: 'sum by (level, detected_level) (count_over_time({job="mx"} | drop __error__ [1m]))',
    start: String(start), end: String(end), step: '60000ms', limit: '1000', direction: 'backward',
  }, { 'X-Query-Tags': 'Source=logvolhist' });
  assert.equal(r.status, 200, r.text);
  const body = r.json();
  assert.equal(body.data.resultType, 'matrix');
  // every entry is counted once whatever its level
  const total = new Map();
  for (const s of body.data.result) {
    for (const k of Object.keys(s.metric)) assert.ok(['level', 'detected_level'].includes(k));
    for (const [x, v] of s.values) total.set(x, (total.get(x) ?? 0) + Number(v));
  }
  for (const x of steps(start, end, step)) {
    const want = ALL.reduce((s, a) => s + inWindow(a, x, 60n * SEC).length, 0);
    assert.equal(total.get(sec(x)) ?? 0, want, `at ${sec(x)}`);
  }
});

test('errors: parse errors, series limit, log queries at /query', async () => {
  let r = await queryRange(srv, { query: 'sum(rate({job="mx"}[1m]) by (app)', start: String(B), end: String(B + 600n * SEC), step: '60s' });
  assert.equal(r.status, 400);
  assert.match(r.text, /^parse error/);
  r = await request(srv, 'GET', `/loki/api/v1/query?${qs({ query: '{job="mx"}', time: String(B) })}`);
  assert.equal(r.status, 400);
  assert.equal(r.text, 'log queries are not supported as an instant query type, please change your query to a range query type');
  const limited = await new Strata({ args: ['-limits_config.max_query_series=2'] }).start();
  try {
    const res = await pushJSON(limited, Object.entries(DATA).map(([app, values]) => ({ stream: { job: 'mx', app }, values: values.map(([ts, l]) => [String(ts), l]) })));
    assert.equal(res.status, 204, res.text);
    r = await request(limited, 'GET', `/loki/api/v1/query?${qs({ query: 'sum by (app) (count_over_time({job="mx"}[10m]))', time: String(B + 600n * SEC) })}`);
    assert.equal(r.status, 400);
    assert.equal(r.text, 'maximum number of series (2) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()');
    r = await request(limited, 'GET', `/loki/api/v1/query?${qs({ query: 'sum(count_over_time({job="mx"}[10m]))', time: String(B + 600n * SEC) })}`);
    assert.equal(r.status, 200, r.text);
  } finally {
    await limited.stop();
    limited.cleanup();
  }
});
