// limits_table.test.mjs: every row of the reference's tables 1.6 (validation) and 1.8 (rate and
// cardinality limits), table-driven, against the real binary: the status code, the exact body text,
// and that the valid part of the same request was stored while the failing part was not (or, where
// Loki rejects the whole request, that nothing was stored). Loki's defaults are used unless a row
// needs a knob. The `disallowed_structured_metadata` row has no configuration key in Strata (the
// three structured-metadata limits are fixed at Loki's defaults), so it is covered by the unit test
// tests/unit/ingester/test_push_json.c (test_disallowed_structured_metadata).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import SnappyJS from 'snappyjs';
import { Strata, request, pushJSON, queryRange } from './lib/strata.mjs';

const nowNs = () => BigInt(Date.now()) * 1000000n;
const SEC = 1000000000n;
// RFC3339 of the second containing ts (as Loki prints times in these messages)
const rfc3339 = (ts) => new Date(Number(ts / SEC) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
// Loki's label string: names sorted, `name="value"` joined by ", "
const lstr = (l) => '{' + Object.keys(l).sort().map((k) => `${k}="${l[k]}"`).join(', ') + '}';

// ---- protobuf (for the rows only a label string can express) ------------------------------------
function varint(v) {
  let n = BigInt(v);
  const o = [];
  while (n >= 0x80n) { o.push(Number(n & 0x7fn) | 0x80); n >>= 7n; }
  o.push(Number(n));
  return Buffer.from(o);
}
const fld = (num, b) => Buffer.concat([varint((num << 3) | 2), varint(b.length), b]);
const str = (num, s) => fld(num, Buffer.from(s));
const uint = (num, v) => Buffer.concat([varint(num << 3), varint(v)]);
function protoPush(streams) {
  const body = Buffer.concat(streams.map(([labels, ts, line]) =>
    fld(1, Buffer.concat([str(1, labels), fld(2, Buffer.concat([fld(1, Buffer.concat([uint(1, ts / SEC), uint(2, ts % SEC)])), str(2, line)]))]))));
  return Buffer.from(SnappyJS.compress(body));
}

// ---- servers --------------------------------------------------------------------------------------
let dflt, nodisc;
before(async () => {
  dflt = await new Strata().start(); // Loki's defaults, service_name discovery and detected_level on
  // discovery off: a stream without labels stays without labels (with discovery it gets
  // service_name="unknown_service" and is valid, in Loki as here)
  nodisc = await new Strata({ args: ['-limits_config.discover_service_name=', '-limits_config.max_line_size=100',
    '-limits_config.max_line_size_truncate=true'] }).start();
});
after(async () => {
  for (const s of [dflt, nodisc]) {
    assert.equal(await s.stop(), 0, s.logs);
    s.cleanup();
  }
});

async function lines(srv, q, t) {
  const r = await queryRange(srv, { query: q, start: String(t - 30n * 24n * 3600n * SEC), end: String(t + 3600n * SEC), limit: '100', direction: 'forward' });
  assert.equal(r.status, 200, r.text);
  return r.json().data.result.flatMap((s) => s.values.map((v) => v[1])).sort();
}

// ---- table 1.6 ------------------------------------------------------------------------------------
// Each row: the failing stream (JSON `stream` + `values`), and the exact message (a function of the
// row's timestamp, or a RegExp when part of it is the server's clock). Every request also carries a
// valid stream {job="<row>-ok"} that must be stored.
const md129 = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`k${String(i).padStart(3, '0')}`, 'v']));
const names16 = Object.fromEntries([['job', 'names'], ...Array.from({ length: 15 }, (_, i) => [`a${i + 1}`, 'v'])]);
const longName = 'n'.repeat(1025);
const ROWS = [
  {
    reason: 'greater_than_max_sample_age',
    stream: (t) => ({ stream: { job: 'old' }, values: [[String(t - 8n * 24n * 3600n * SEC), 'too old']] }),
    message: (t) => new RegExp(`^entry for stream '\\{job="old", service_name="old"\\}' has timestamp too old: ${rfc3339(t - 8n * 24n * 3600n * SEC)}, ` +
      'oldest acceptable timestamp is: (\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ)\\n$'),
    // the oldest acceptable time is the server's now - reject_old_samples_max_age (168h)
    check: (m, t) => assert.ok(Math.abs(Date.parse(m[1]) - (Number(t / 1000000n) - 168 * 3600e3)) < 60e3, m[1]),
  },
  {
    reason: 'too_far_in_future',
    stream: (t) => ({ stream: { job: 'new' }, values: [[String(t + 20n * 60n * SEC), 'too new']] }),
    message: (t) => `entry for stream '{job="new", service_name="new"}' has timestamp too new: ${rfc3339(t + 20n * 60n * SEC)}`,
  },
  {
    // "256KB" is 262144 bytes, as Loki's datasize reads it
    reason: 'line_too_long',
    stream: (t) => ({ stream: { job: 'long' }, values: [[String(t), 'x'.repeat(262145)]] }),
    message: () => "max entry size '262144' bytes exceeded for stream '{job=\"long\", service_name=\"long\"}' while adding an entry with length '262145' bytes",
  },
  {
    reason: 'structured_metadata_too_large',
    stream: (t) => ({ stream: { job: 'mdbig' }, values: [[String(t), 'big metadata', { big: 'v'.repeat(65536) }]] }),
    message: () => "stream '{job=\"mdbig\", service_name=\"mdbig\"}' has structured metadata too large: '65539' bytes, limit: '65536' bytes. " +
      'Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.',
  },
  {
    reason: 'structured_metadata_too_many',
    stream: (t) => ({ stream: { job: 'mdmany' }, values: [[String(t), 'many metadata', md129]] }),
    message: () => "stream '{job=\"mdmany\", service_name=\"mdmany\"}' has too many structured metadata labels: '129', limit: '128'. " +
      'Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it.',
  },
  {
    // service_name (added by discovery) does not count: 16 names here
    reason: 'max_label_names_per_series',
    stream: (t) => ({ stream: names16, values: [[String(t), 'too many labels']] }),
    message: () => `entry for stream '${lstr({ ...names16, service_name: 'names' })}' has 16 label names; limit 15`,
  },
  {
    reason: 'label_name_too_long',
    stream: (t) => ({ stream: { job: 'lname', [longName]: 'v' }, values: [[String(t), 'long label name']] }),
    message: () => `stream '{job="lname", ${longName}="v", service_name="lname"}' has label name too long: '${longName}'`,
  },
  {
    reason: 'label_value_too_long',
    stream: (t) => ({ stream: { job: 'lvalue', v: 'x'.repeat(2049) }, values: [[String(t), 'long label value']] }),
    message: () => `stream '{job="lvalue", service_name="lvalue", v="${'x'.repeat(2049)}"}' has label value too long: '${'x'.repeat(2049)}'`,
  },
];

for (const row of ROWS) {
  test(`1.6 ${row.reason}: 400, Loki's text, the valid stream of the request stored`, async () => {
    const t = nowNs();
    const ok = `${row.reason}-ok`;
    const r = await pushJSON(dflt, [{ stream: { job: ok }, values: [[String(t), 'valid line']] }, row.stream(t)]);
    assert.equal(r.status, 400);
    const want = row.message(t);
    if (want instanceof RegExp) {
      const m = r.text.match(want);
      assert.ok(m, r.text);
      row.check(m, t);
    } else {
      assert.equal(r.text, want + '\n');
    }
    assert.deepEqual(await lines(dflt, `{job="${ok}"}`, t), ['valid line']);
    const bad = row.stream(t).stream.job;
    assert.deepEqual(await lines(dflt, `{job="${bad}"}`, t), []);
  });
}

test('1.6 missing_labels: 400 for a stream without labels (or only empty values), the rest stored', async () => {
  const t = nowNs();
  const r = await pushJSON(nodisc, [
    { stream: {}, values: [[String(t), 'no labels']] },
    { stream: { job: 'missing-ok' }, values: [[String(t), 'valid line']] },
    { stream: { job: '' }, values: [[String(t), 'only an empty value']] },
  ]);
  assert.equal(r.status, 400);
  assert.equal(r.text, '2 errors like: error at least one label pair is required per stream\n');
  assert.deepEqual(await lines(nodisc, '{job="missing-ok"}', t), ['valid line']);
});

test('1.6 duplicate_label_names (a label string only protobuf can carry): 400, the rest stored', async () => {
  const t = nowNs();
  const r = await request(dflt, 'POST', '/loki/api/v1/push', {
    body: protoPush([['{a="1", a="2"}', t, 'dup'], ['{job="dup-ok"}', t, 'valid line']]),
    headers: { 'Content-Type': 'application/x-protobuf' },
  });
  assert.equal(r.status, 400);
  assert.equal(r.text, "stream '{a=\"1\", a=\"2\", service_name=\"unknown_service\"}' has duplicate label name: 'a'\n");
  assert.deepEqual(await lines(dflt, '{job="dup-ok"}', t), ['valid line']);
  assert.deepEqual(await lines(dflt, '{a="1"}', t), []);
});

test('1.6 invalid_labels: a label string that does not parse rejects the whole request, nothing stored', async () => {
  const t = nowNs();
  let r = await request(dflt, 'POST', '/loki/api/v1/push', {
    body: protoPush([['{job="inv-ok"}', t, 'valid line'], ['{job="x", 1a="y"}', t, 'bad']]),
    headers: { 'Content-Type': 'application/x-protobuf' },
  });
  assert.equal(r.status, 400);
  assert.equal(r.text, "couldn't parse labels: 1:11: parse error: unexpected character in label matcher, expected label name\n");
  // a JSON stream object with a name that is not [a-zA-Z_][a-zA-Z0-9_]*
  r = await pushJSON(dflt, [{ stream: { job: 'inv-ok' }, values: [[String(t), 'valid line']] }, { stream: { 'a-b': 'x' }, values: [[String(t), 'bad']] }]);
  assert.equal(r.status, 400);
  assert.equal(r.text, 'couldn\'t parse labels: invalid label name "a-b"\n');
  assert.deepEqual(await lines(dflt, '{job="inv-ok"}', t), []);
});

test('1.6 no streams at all: 422', async () => {
  for (const body of ['{"streams":[]}', '{"streams":null}', '{}']) {
    const r = await request(dflt, 'POST', '/loki/api/v1/push', { body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(r.status, 422, body);
    assert.equal(r.text, 'error at least one valid stream is required for ingestion\n');
  }
  const r = await request(dflt, 'POST', '/loki/api/v1/push', { body: protoPush([]), headers: { 'Content-Type': 'application/x-protobuf' } });
  assert.equal(r.status, 422);
  assert.equal(r.text, 'error at least one valid stream is required for ingestion\n');
});

test('1.6 several failures in one request: identical messages counted, distinct ones joined with "; "', async () => {
  const t = nowNs();
  const old = t - 10n * 24n * 3600n * SEC;
  const r = await pushJSON(dflt, [{ stream: { job: 'group' }, values: [
    [String(old), 'old 1'], [String(t), 'kept'], [String(old), 'old 2'], [String(t + 3600n * SEC), 'new 1'],
  ] }]);
  assert.equal(r.status, 400);
  const parts = r.text.replace(/\n$/, '').split('; ');
  assert.equal(parts.length, 2, r.text);
  assert.match(parts[0], new RegExp(`^2 errors like: entry for stream '\\{job="group", service_name="group"\\}' has timestamp too old: ${rfc3339(old)}, oldest acceptable timestamp is: `));
  assert.equal(parts[1], `1 errors like: entry for stream '{job="group", service_name="group"}' has timestamp too new: ${rfc3339(t + 3600n * SEC)}`);
  assert.deepEqual(await lines(dflt, '{job="group"}', t), ['kept']);
});

test('1.6 max_line_size_truncate: the line is cut to max_line_size and stored, 204', async () => {
  const t = nowNs();
  const r = await pushJSON(nodisc, [{ stream: { job: 'trunc' }, values: [[String(t), 'y'.repeat(150)]] }]);
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await lines(nodisc, '{job="trunc"}', t), ['y'.repeat(100)]);
});

// ---- table 1.8 (429s) -------------------------------------------------------------------------------

test('1.8 ingestion_rate_mb / burst: whole request refused with 429 and Loki\'s text, nothing stored', async () => {
  const srv = await new Strata({ args: ['-limits_config.ingestion_rate_mb=0.001', '-limits_config.ingestion_burst_size_mb=0.002',
    '-limits_config.discover_log_levels=false'] }).start();
  try {
    const t = nowNs();
    const r = await pushJSON(srv, [
      { stream: { job: 'rate-a' }, values: [[String(t), 'a'.repeat(1500)], [String(t + 1n), 'b'.repeat(1000)]] },
      { stream: { job: 'rate-b' }, values: [[String(t), 'c'.repeat(500), { k: 'vv' }]] },
    ]);
    assert.equal(r.status, 429);
    // 0.001 MiB/s = 1048 bytes/s; line bytes plus structured metadata bytes (1500 + 1000 + 500 + 3)
    assert.equal(r.text, "ingestion rate limit exceeded for user fake (limit: 1048 bytes/sec) while attempting to ingest '3' lines totaling " +
      "'3003' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n");
    assert.deepEqual(await lines(srv, '{job=~"rate-.*"}', t), []);
  } finally {
    assert.equal(await srv.stop(), 0, srv.logs);
    srv.cleanup();
  }
});

test('1.8 per_stream_rate_limit: 429 with Loki\'s ingester text for the stream, other streams stored', async () => {
  const srv = await new Strata({ args: ['-limits_config.per_stream_rate_limit=2KiB', '-limits_config.per_stream_rate_limit_burst=3KiB',
    '-limits_config.discover_log_levels=false'] }).start();
  try {
    const t = 1800000000n * SEC + 500000000n; // fixed, within the accepted window below
    const now = nowNs();
    const ts = now - (now % SEC) - 60n * SEC + 500000000n; // a minute ago, .5 s
    assert.ok(t); // (keeps the constant documented: Loki prints the fraction without trailing zeros)
    assert.equal((await pushJSON(srv, [{ stream: { job: 'hot' }, values: [[String(ts), 'first']] }])).status, 204);
    const r = await pushJSON(srv, [
      { stream: { job: 'hot' }, values: [[String(ts + 1n), 'z'.repeat(2048)], [String(ts + 2n), 'w'.repeat(1500)]] },
      { stream: { job: 'calm' }, values: [[String(ts), 'fine']] },
    ]);
    assert.equal(r.status, 429);
    const when = (n) => `${new Date(Number(n / 1000000n)).toISOString().slice(0, 19).replace('T', ' ')}.${String(n % SEC).padStart(9, '0').replace(/0+$/, '')} +0000 UTC`;
    const reason = (bytes) => `Per stream rate limit exceeded (limit: 2KB/sec) while attempting to ingest for stream '{job="hot", service_name="hot"}' ` +
      `totaling ${bytes}, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased`;
    assert.equal(r.text,
      `entry with timestamp ${when(ts + 1n)} ignored, reason: '${reason('2KB')}',\n` +
      `entry with timestamp ${when(ts + 2n)} ignored, reason: '${reason('1500B')}',\n` +
      'user \'fake\', total ignored: 2 out of 2 for stream: {job="hot", service_name="hot"}\n');
    assert.deepEqual(await lines(srv, '{job=~"hot|calm"}', ts), ['fine', 'first']);
  } finally {
    assert.equal(await srv.stop(), 0, srv.logs);
    srv.cleanup();
  }
});

test('1.8 max_global_streams_per_user: new streams over the limit refused with 429, existing ones stored', async () => {
  const srv = await new Strata({ args: ['-limits_config.max_global_streams_per_user=2'] }).start();
  try {
    const t = nowNs();
    const r = await pushJSON(srv, [
      { stream: { job: 'api', pod: 'p1' }, values: [[String(t), 'one']] },
      { stream: { job: 'api', pod: 'p2' }, values: [[String(t), 'two']] },
      { stream: { job: 'api', pod: 'p3' }, values: [[String(t), 'three']] },
    ]);
    assert.equal(r.status, 429);
    // Loki's text, then Strata's addition naming the labels with the most values
    assert.equal(r.text, 'maximum active stream limit exceeded when trying to create stream {job="api", pod="p3", service_name="api"}, ' +
      'reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the ' +
      "limit can be increased, user: 'fake' (labels with the most values among the 2 active streams: pod (2), job (1))\n");
    assert.deepEqual(await lines(srv, '{job="api"}', t), ['one', 'two']);
  } finally {
    assert.equal(await srv.stop(), 0, srv.logs);
    srv.cleanup();
  }
});
