// pipeline.test.mjs: LogQL log pipelines against the real binary: generated JSON and logfmt lines
// (one entry with structured metadata) pushed over HTTP, then log queries with | json, | logfmt,
// label filters, line_format, label_format, drop/keep and __error__, whose exact "result" arrays are
// computed independently here, in both the 2-tuple and the categorize-labels encodings. The stream
// labels and structured metadata the server stored (it may add service_name or detected_level) are
// read back first, so the expectations hold whatever the ingest-time discovery settings are.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Strata, pushJSON, queryRange, request, qs } from './lib/strata.mjs';
import { rng } from './lib/gen.mjs';

const NOW_NS = BigInt(Date.now()) * 1000000n;
const START = NOW_NS - 3600n * 1000000000n;
const END = NOW_NS;
const N = 60;

const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const LEVELS = ['debug', 'info', 'info', 'warn', 'error'];

// Streams: labels, and entries [tsString, line, structuredMetadata?].
function build() {
  const r = rng(7);
  const streams = [
    { labels: { job: 'json-app', env: 'prod' }, entries: [] },
    { labels: { job: 'json-app', env: 'dev' }, entries: [] },
    { labels: { job: 'logfmt-app', env: 'prod' }, entries: [] },
  ];
  for (let i = 0; i < N; i++) {
    for (let s = 0; s < streams.length; s++) {
      const ts = START + BigInt(i) * 1000000n + BigInt(s);
      const level = pick(r, LEVELS);
      let line;
      if (s < 2) {
        const o = { level, msg: level === 'error' ? 'payment failed: "visa"' : 'order processed', status: pick(r, [200, 404, 500]),
          latency_ms: Math.floor(r() * 900), user: { id: `u${i % 5}`, geo: { cc: pick(r, ['de', 'fr']) } }, tags: ['a', 'b'], ok: r() < 0.5, none: null };
        if (i % 10 === 3) o.env = 'override';
        if (i % 10 === 7) o['http-method'] = 'GET';
        line = JSON.stringify(o);
      } else {
        line = `level=${level} caller=handler.go:${i} msg="request done" status=${pick(r, [200, 404, 500])} duration=${(r() * 2).toFixed(3)}s user=u${i % 5}`;
        if (i % 15 === 0) line += ' bad"pair';
      }
      const e = [ts.toString(), line];
      if (s === 0 && i === 5) e.push({ trace_id: 'abc123' });
      streams[s].entries.push(e);
    }
  }
  return streams;
}

const DATA = build();

// Loki's label-name sanitising.
const sanitize = (k) => {
  k = k.trim();
  if (k === '') return '';
  const s = [...k].map((c) => (/[A-Za-z0-9_]/.test(c) ? c : '_')).join('');
  return /^[0-9]/.test(s) ? `_${s}` : s;
};

// Loki's `| json` without parameters: scalars only, nested keys joined with _, first value wins.
function jsonLabels(line, base, md) {
  const out = {};
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o)) {
      const part = sanitize(k);
      let name = prefix && part ? `${prefix}_${part}` : prefix || part;
      if (v === null || Array.isArray(v)) continue;
      if (typeof v === 'object') {
        walk(v, name);
        continue;
      }
      if (name in base || name in md) name += '_extracted';
      if (name in out) continue;
      out[name] = typeof v === 'string' ? v : String(v);
    }
  };
  walk(JSON.parse(line), '');
  return out;
}

// Loki's `| logfmt` for the generated lines (no escapes; malformed pairs skipped).
function logfmtLabels(line, base, md = {}) {
  const out = {};
  const re = /([^\s=]+)=("([^"]*)"|[^\s"=]*)(?=\s|$)/g;
  let m;
  while ((m = re.exec(line))) {
    let name = sanitize(m[1]);
    const v = m[3] !== undefined ? m[3] : m[2];
    if (v === '') continue;
    if (name in base || name in md) name += '_extracted';
    if (!(name in out)) out[name] = v;
  }
  return out;
}

const goQuote = (s) => JSON.stringify(s); // the generated values need no escapes that differ
const labelsKey = (l) => '{' + Object.keys(l).sort().map((k) => `${k}=${goQuote(l[k])}`).join(', ') + '}';
const sortObj = (l) => Object.fromEntries(Object.keys(l).sort().map((k) => [k, l[k]]));

// Expected "result": entries of the selected streams mapped by fn(entry) -> {labels, line} | null,
// grouped by labels, groups sorted by their label text, values in timestamp order (forward).
// What the server stored: stream labels by the pushed labels' key, structured metadata by timestamp.
const STORED = { labels: new Map(), md: new Map() };

function expected(jobs, fn, { categorize = false } = {}) {
  const groups = new Map();
  const entries = [];
  for (const s of DATA.filter((x) => jobs.includes(x.labels.job))) {
    const base = STORED.labels.get(labelsKey(s.labels));
    for (const [ts, line] of s.entries) {
      const md = STORED.md.get(ts) || {};
      const r = fn({ base, line, md });
      if (r) entries.push({ ts, line: r.line ?? line, labels: r.labels, base, md, parsed: r.parsed || {} });
    }
  }
  entries.sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? -1 : 1));
  for (const e of entries) {
    const stream = categorize ? e.stream ?? e.base : e.labels;
    const key = labelsKey(stream);
    if (!groups.has(key)) groups.set(key, { stream: sortObj(stream), values: [] });
    if (categorize) {
      const extra = {};
      if (Object.keys(e.md).length) extra.structuredMetadata = sortObj(e.md);
      if (Object.keys(e.parsed).length) extra.parsed = sortObj(e.parsed);
      groups.get(key).values.push([e.ts, e.line, extra]);
    } else {
      groups.get(key).values.push([e.ts, e.line]);
    }
  }
  return [...groups.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((g) => g[1]);
}

let srv;

before(async () => {
  srv = await new Strata().start();
  const r = await pushJSON(srv, DATA.map((s) => ({ stream: s.labels, values: s.entries })));
  assert.equal(r.status, 204, r.text);
  // read back the stored stream labels and structured metadata
  for (const s of DATA) {
    const sel = '{' + Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(',') + '}';
    const sr = await request(srv, 'GET', `/loki/api/v1/series?${qs({ 'match[]': sel, start: String(START), end: String(END) })}`);
    assert.equal(sr.status, 200, sr.text);
    const got = sr.json().data;
    assert.equal(got.length, 1, JSON.stringify(got));
    for (const [k, v] of Object.entries(s.labels)) assert.equal(got[0][k], v);
    STORED.labels.set(labelsKey(s.labels), got[0]);
  }
  const q = await queryRange(srv, { query: '{job=~".+"}', start: String(START), end: String(END), limit: '5000' },
    { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' });
  assert.equal(q.status, 200, q.text);
  for (const st of q.json().data.result) for (const [ts, , extra] of st.values) STORED.md.set(ts, extra.structuredMetadata || {});
  assert.equal(STORED.md.size, 3 * N);
  assert.equal(STORED.md.get(DATA[0].entries[5][0]).trace_id, 'abc123');
});

after(async () => {
  await srv.stop();
  srv.cleanup();
});

async function query(q, { categorize = false, limit = 5000 } = {}) {
  const r = await queryRange(srv, { query: q, start: String(START), end: String(END), limit: String(limit), direction: 'forward' },
    categorize ? { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' } : undefined);
  assert.equal(r.status, 200, `${q}: ${r.text}`);
  const body = r.json();
  assert.equal(body.status, 'success');
  assert.equal(body.data.resultType, 'streams');
  return body;
}

async function check(q, jobs, fn, opts = {}) {
  const body = await query(q, opts);
  assert.deepEqual(body.data.result, expected(jobs, fn, opts), q);
  return body;
}

test('| json flattens, sanitises, adds _extracted, keeps metadata', async () => {
  await check('{job="json-app"} | json', ['json-app'], ({ base, line, md }) =>
    ({ labels: { ...base, ...md, ...jsonLabels(line, base, md) } }));
});

test('| json with parameters', async () => {
  await check('{job="json-app"} | json lvl="level", cc="user.geo.cc", first_tag="tags[0]", nope="a.b"', ['json-app'], ({ base, line, md }) => {
    const o = JSON.parse(line);
    return { labels: { ...base, ...md, lvl: o.level, cc: o.user.geo.cc, first_tag: 'a', nope: '' } };
  });
});

test('| logfmt | label filters (string, number, duration)', async () => {
  const lf = ({ base, line, md }) => ({ ...base, ...md, ...logfmtLabels(line, base, md) });
  await check('{job="logfmt-app"} | logfmt | level="error"', ['logfmt-app'], (e) => {
    const l = lf(e);
    return l.level === 'error' ? { labels: l } : null;
  });
  await check('{job="logfmt-app"} | logfmt | status >= 500 or level=~"warn|debug", duration > 500ms', ['logfmt-app'], (e) => {
    const l = lf(e);
    const ok = Number(l.status) >= 500 || (/^(warn|debug)$/.test(l.level) && Number(l.duration.slice(0, -1)) > 0.5);
    return ok ? { labels: l } : null;
  });
  // --strict: the malformed pair stops parsing with LogfmtParserErr
  await check('{job="logfmt-app"} | logfmt --strict | __error__!=""', ['logfmt-app'], (e) => {
    if (!e.line.includes('bad"pair')) return null;
    const l = lf(e);
    const pos = e.line.indexOf('bad"pair') + 4;
    return { labels: { ...l, __error__: 'LogfmtParserErr', __error_details__: `logfmt syntax error at pos ${pos} : unexpected '"'` } };
  });
});

test('__error__: failing parsers keep lines, __error__="" drops them', async () => {
  await check('{env="prod"} | json', ['json-app', 'logfmt-app'], ({ base, line, md }) => {
    if (base.env !== 'prod') return null;
    if (base.job === 'logfmt-app') {
      return { labels: { ...base, ...md, __error__: 'JSONParserErr', __error_details__: "Value looks like object, but can't find closing '}' symbol" } };
    }
    return { labels: { ...base, ...md, ...jsonLabels(line, base, md) } };
  });
  await check('{env="prod"} | json | __error__=""', ['json-app'], ({ base, line, md }) =>
    base.env === 'prod' ? { labels: { ...base, ...md, ...jsonLabels(line, base, md) } } : null);
  // a numeric filter on a non-number keeps the line with LabelFilterErr
  await check('{job="json-app", env="dev"} | json | msg > 1 | keep msg, __error__', ['json-app'], ({ base, line }) =>
    base.env === 'dev' ? { labels: { msg: JSON.parse(line).msg, __error__: 'LabelFilterErr',
      __error_details__: `strconv.ParseFloat: parsing ${goQuote(JSON.parse(line).msg)}: invalid syntax` } } : null);
});

test('line_format rewrites lines; later line filters see the new line', async () => {
  await check('{job="json-app"} | json | line_format "{{.level | ToUpper}} {{.user_id}}: {{.msg}}" |= "ERROR"', ['json-app'],
    ({ base, line, md }) => {
      const l = { ...base, ...md, ...jsonLabels(line, base, md) };
      const nl = `${l.level.toUpperCase()} ${l.user_id}: ${l.msg}`;
      return nl.includes('ERROR') ? { labels: l, line: nl } : null;
    });
  await check('{job="logfmt-app"} | logfmt | line_format "{{.msg}}"', ['logfmt-app'], ({ base, line, md }) =>
    ({ labels: { ...base, ...md, ...logfmtLabels(line, base, md) }, line: 'request done' }));
});

test('label_format, drop and keep', async () => {
  await check('{job="logfmt-app"} | logfmt | label_format lvl=level, who="{{.user}}@{{.env}}" | drop caller, msg, duration', ['logfmt-app'],
    ({ base, line, md }) => {
      const l = { ...base, ...md, ...logfmtLabels(line, base, md) };
      l.lvl = l.level;
      delete l.level;
      l.who = `${l.user}@${l.env}`;
      delete l.caller;
      delete l.msg;
      delete l.duration;
      return { labels: l };
    });
  await check('{job="json-app"} | json | keep level, job, status="500"', ['json-app'], ({ base, line, md }) => {
    const j = jsonLabels(line, base, md);
    const l = { job: base.job, level: j.level };
    if (j.status === '500') l.status = '500';
    return { labels: l };
  });
});

test('categorize-labels: stream labels, structuredMetadata and parsed per entry', async () => {
  const body = await check('{job="json-app"} | json | drop tags', ['json-app'], (e) => {
    const parsed = jsonLabels(e.line, e.base, e.md);
    return { labels: null, parsed };
  }, { categorize: true });
  assert.deepEqual(body.data.encodingFlags, ['categorize-labels']);
  // a parsed label that overrides a stream label moves it out of "stream"
  const b2 = await query('{job="json-app", env="dev"} | label_format env="x"', { categorize: true });
  const dev = { ...STORED.labels.get(labelsKey({ job: 'json-app', env: 'dev' })) };
  delete dev.env;
  assert.deepEqual(b2.data.result.map((s) => s.stream), [dev]);
  const v0 = b2.data.result[0].values[0];
  assert.deepEqual(v0[2].parsed, { env: 'x' });
  assert.deepEqual(v0[2].structuredMetadata, Object.keys(STORED.md.get(v0[0])).length ? STORED.md.get(v0[0]) : undefined);
  // a line-only pipeline keeps the stream grouping and metadata
  const b3 = await query('{job="json-app", env="prod"} |= "order"', { categorize: true, limit: 10 });
  assert.deepEqual(b3.data.result.map((s) => s.stream), [STORED.labels.get(labelsKey({ job: 'json-app', env: 'prod' }))]);
  for (const [ts, , extra] of b3.data.result[0].values) assert.deepEqual(extra.structuredMetadata || {}, STORED.md.get(ts));
});

test('limit counts entries after the whole pipeline; bad templates are 400', async () => {
  const body = await query('{job="logfmt-app"} | logfmt | level="error"', { limit: 3 });
  const all = expected(['logfmt-app'], ({ base, line, md }) => {
    const l = { ...base, ...md, ...logfmtLabels(line, base, md) };
    return l.level === 'error' ? { labels: l } : null;
  });
  const first3 = all.flatMap((g) => g.values.map((v) => v[0])).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)).slice(0, 3);
  assert.deepEqual(body.data.result.flatMap((g) => g.values.map((v) => v[0])).sort(), first3.sort());
  assert.equal(body.data.stats.summary.totalEntriesReturned, 3);
  const r = await queryRange(srv, { query: '{job="json-app"} | line_format "{{ nope }}"', start: String(START), end: String(END) });
  assert.equal(r.status, 400);
  assert.equal(r.text, 'invalid line template: template: line:1: function "nope" not defined');
});
