// push_formats.test.mjs: every push format against the real binary: Loki protobuf + snappy (with and
// without Content-Type, gzip on top, Content-Encoding snappy), OTLP/HTTP logs as JSON and protobuf
// (plain and gzip), their error answers, then query_range with categorize-labels to check labels,
// lines, timestamps and structured metadata (including service_name and detected_level) exactly.
// Protobuf bytes are assembled by hand here; snappy comes from snappyjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import SnappyJS from 'snappyjs';
import { Strata, request, queryRange } from './lib/strata.mjs';

// ---- a tiny protobuf writer ------------------------------------------------------------------------
function varint(v) {
  let n = BigInt.asUintN(64, BigInt(v));
  const out = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Buffer.from(out);
}
const key = (num, wt) => varint((num << 3) | wt);
const bytesField = (num, buf) => Buffer.concat([key(num, 2), varint(buf.length), buf]);
const str = (num, s) => bytesField(num, Buffer.from(s, 'utf8'));
const msg = (num, ...parts) => bytesField(num, Buffer.concat(parts));
const uint = (num, v) => Buffer.concat([key(num, 0), varint(v)]);
function fixed64(num, v) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return Buffer.concat([key(num, 1), b]);
}

// logproto PushRequest (reference 1.3): streams=1 {labels=1, entries=2 {timestamp=1 {seconds=1,
// nanos=2}, line=2, structuredMetadata=3 {name=1, value=2}}}
function pushRequest(streams) {
  return Buffer.concat(streams.map((s) => msg(1,
    str(1, s.labels),
    ...s.entries.map((e) => msg(2,
      msg(1, uint(1, e.ts / 1000000000n), uint(2, e.ts % 1000000000n)),
      str(2, e.line),
      ...Object.entries(e.md || {}).map(([k, v]) => msg(3, str(1, k), str(2, v))))))));
}
const snappy = (buf) => Buffer.from(SnappyJS.compress(buf));

// OTLP: ExportLogsServiceRequest.resource_logs=1 {resource=1 {attributes=1}, scope_logs=2 {scope=1
// {name=1, version=2}, log_records=2}}; LogRecord: time=1 (fixed64), severity_number=2, severity_text=3,
// body=5, attributes=6, trace_id=9, span_id=10, observed_time=11 (fixed64); KeyValue {key=1, value=2};
// AnyValue {string=1, int=3, kvlist=6 {values=1}}.
const anyStr = (s) => str(1, s);
const anyInt = (i) => uint(3, i);
const kv = (k, anyv) => msg(1, str(1, k), msg(2, anyv)); // as an element of a repeated KeyValue field 1
const kvField = (num, k, anyv) => msg(num, str(1, k), msg(2, anyv));

function otlpProtobuf({ resource, scope, records }) {
  const res = Buffer.concat(Object.entries(resource).map(([k, v]) => kvField(1, k, anyStr(v))));
  const sc = Buffer.concat([str(1, scope.name), str(2, scope.version)]);
  const recs = records.map((r) => msg(2,
    r.time ? fixed64(1, r.time) : Buffer.alloc(0),
    r.severityNumber ? uint(2, r.severityNumber) : Buffer.alloc(0),
    r.severityText ? str(3, r.severityText) : Buffer.alloc(0),
    msg(5, r.body),
    ...(r.attrs || []).map(([k, v]) => kvField(6, k, v)),
    r.traceId ? bytesField(9, Buffer.from(r.traceId, 'hex')) : Buffer.alloc(0),
    r.spanId ? bytesField(10, Buffer.from(r.spanId, 'hex')) : Buffer.alloc(0),
    r.observed ? fixed64(11, r.observed) : Buffer.alloc(0)));
  return msg(1, msg(1, res), msg(2, msg(1, sc), ...recs));
}

// google.rpc.Status {message=2}: the OTLP error body
function statusMessage(buf) {
  assert.equal(buf[0], 0x12);
  let i = 1, len = 0, shift = 0;
  for (;;) {
    const b = buf[i++];
    len |= (b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    shift += 7;
  }
  assert.equal(i + len, buf.length);
  return buf.subarray(i).toString('utf8');
}

// ---- server and helpers ---------------------------------------------------------------------------
let srv;
const T = (BigInt(Date.now()) - 120000n) * 1000000n + 123456789n; // two minutes ago, odd nanoseconds

before(async () => { srv = await new Strata().start(); });
after(async () => {
  assert.equal(await srv.stop(), 0, srv.logs); // also catches sanitizer reports at exit
  srv.cleanup();
});

function push(path, body, headers) {
  return request(srv, 'POST', path, { body, headers });
}

async function query(q) {
  const r = await queryRange(srv, { query: q, start: String(T - 3600n * 1000000000n), end: String(BigInt(Date.now()) * 1000000n + 1000000000n),
    direction: 'forward', limit: '100' }, { 'X-Loki-Response-Encoding-Flags': 'categorize-labels' });
  assert.equal(r.status, 200, r.text);
  const body = r.json();
  assert.deepEqual(body.data.encodingFlags, ['categorize-labels']);
  return body.data.result;
}

// ---- Loki protobuf -----------------------------------------------------------------------------------
test('protobuf + snappy push, queried back exactly', async () => {
  const body = snappy(pushRequest([{ labels: '{job="pb-snappy", env="it"}', entries: [
    { ts: T + 1n, line: 'level=warn msg="proto one"', md: { trace_id: 't1', user: 'u1' } },
    { ts: T + 2n, line: '{"level":"error","msg":"two"}' },
  ] }]));
  const r = await push('/loki/api/v1/push', body, { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  assert.deepEqual(await query('{job="pb-snappy"}'), [{
    stream: { env: 'it', job: 'pb-snappy', service_name: 'pb-snappy' },
    values: [
      [String(T + 1n), 'level=warn msg="proto one"', { structuredMetadata: { trace_id: 't1', user: 'u1', detected_level: 'warn' } }],
      [String(T + 2n), '{"level":"error","msg":"two"}', { structuredMetadata: { detected_level: 'error' } }],
    ],
  }]);
});

test('a missing Content-Type is protobuf; Content-Encoding snappy passes through', async () => {
  const body = snappy(pushRequest([{ labels: '{job="pb-noct"}', entries: [{ ts: T + 3n, line: 'plain INFO text' }] }]));
  let r = await push('/loki/api/v1/push', body, {});
  assert.equal(r.status, 204, r.text);
  const body2 = snappy(pushRequest([{ labels: '{job="pb-snappyenc", app="shop"}', entries: [{ ts: T + 4n, line: 'nothing' }] }]));
  r = await push('/loki/api/v1/push', body2, { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'snappy' });
  assert.equal(r.status, 204, r.text);
  // the legacy path takes protobuf too
  const body3 = snappy(pushRequest([{ labels: '{job="pb-legacy"}', entries: [{ ts: T + 5n, line: 'legacy [ERROR] x' }] }]));
  r = await push('/api/prom/push', body3, { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await query('{job="pb-noct"}'), [{
    stream: { job: 'pb-noct', service_name: 'pb-noct' },
    values: [[String(T + 3n), 'plain INFO text', { structuredMetadata: { detected_level: 'info' } }]],
  }]);
  assert.deepEqual(await query('{job="pb-snappyenc"}'), [{
    stream: { app: 'shop', job: 'pb-snappyenc', service_name: 'shop' },
    values: [[String(T + 4n), 'nothing', { structuredMetadata: { detected_level: 'unknown' } }]],
  }]);
  assert.deepEqual(await query('{job="pb-legacy"}'), [{
    stream: { job: 'pb-legacy', service_name: 'pb-legacy' },
    values: [[String(T + 5n), 'legacy [ERROR] x', { structuredMetadata: { detected_level: 'error' } }]],
  }]);
});

test('gzip + protobuf: gunzip, then snappy', async () => {
  const body = gzipSync(snappy(pushRequest([{ labels: '{job="pb-gzip", level="DEBUG"}', entries: [
    { ts: T + 6n, line: 'level=error but the label wins', md: { user: 'u2' } },
  ] }])));
  const r = await push('/loki/api/v1/push', body, { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await query('{job="pb-gzip"}'), [{
    stream: { job: 'pb-gzip', level: 'DEBUG', service_name: 'pb-gzip' },
    values: [[String(T + 6n), 'level=error but the label wins', { structuredMetadata: { user: 'u2', detected_level: 'debug' } }]],
  }]);
});

test('protobuf errors: labels, timestamps, snappy; JSON is still JSON', async () => {
  const ok = { labels: '{job="pb-err"}', entries: [{ ts: T + 7n, line: 'never stored' }] };
  let r = await push('/loki/api/v1/push', snappy(pushRequest([ok, { labels: '{job="x"', entries: [{ ts: T, line: 'l' }] }])),
    { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 400);
  assert.equal(r.text, "couldn't parse labels: 1:9: parse error: unexpected end of input\n");
  const badTs = msg(1, str(1, '{job="pb-err"}'), msg(2, msg(1, uint(1, 253402300800n)), str(2, 'l')));
  r = await push('/loki/api/v1/push', snappy(badTs), { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 400);
  assert.equal(r.text, 'timestamp: &types.Timestamp{Seconds: 253402300800,\nNanos: 0,\n} after 10000-01-01\n');
  r = await push('/loki/api/v1/push', Buffer.from('not snappy at all'), { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 400);
  assert.equal(r.text, 'snappy: corrupt input\n');
  // JSON with snappy encoding is not decompressed: a parse error
  r = await push('/loki/api/v1/push', snappy(Buffer.from('{"streams":[]}')), { 'Content-Type': 'application/json', 'Content-Encoding': 'snappy' });
  assert.equal(r.status, 400);
  // a JSON media type with parameters is JSON
  r = await push('/loki/api/v1/push', Buffer.from(JSON.stringify({ streams: [{ stream: { job: 'json-ct' }, values: [[String(T + 8n), 'json line']] }] })),
    { 'Content-Type': 'application/json; charset=utf-8' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await query('{job=~"pb-err|json-ct"}'), [{
    stream: { job: 'json-ct', service_name: 'json-ct' },
    values: [[String(T + 8n), 'json line', { structuredMetadata: { detected_level: 'unknown' } }]],
  }]);
});

// ---- OTLP ----------------------------------------------------------------------------------------------
const TRACE = '0102030405060708090a0b0c0d0e0f10';
const SPAN = 'a1a2a3a4a5a6a7a8';

function expectedOtlp(svc) {
  return [{
    stream: { k8s_namespace_name: 'ns1', service_name: svc },
    values: [
      [String(T + 10n), 'otlp line one', { structuredMetadata: {
        user_id: '42', severity_number: '13', severity_text: 'WARN', trace_id: TRACE, span_id: SPAN,
        host_name: 'h1', scope_name: 'sc', scope_version: '1.0', detected_level: 'warn' } }],
      [String(T + 11n), '{"a":1,"msg":"hi"}', { structuredMetadata: {
        host_name: 'h1', scope_name: 'sc', scope_version: '1.0', detected_level: 'unknown' } }],
    ],
  }];
}

test('OTLP JSON', async () => {
  const body = {
    resourceLogs: [{
      resource: { attributes: [
        { key: 'service.name', value: { stringValue: 'otlp-json-svc' } },
        { key: 'k8s.namespace.name', value: { stringValue: 'ns1' } },
        { key: 'host.name', value: { stringValue: 'h1' } }] },
      scopeLogs: [{
        scope: { name: 'sc', version: '1.0' },
        logRecords: [
          { timeUnixNano: String(T + 10n), severityNumber: 13, severityText: 'WARN', body: { stringValue: 'otlp line one' },
            attributes: [{ key: 'user.id', value: { intValue: '42' } }], traceId: TRACE, spanId: SPAN },
          { observedTimeUnixNano: String(T + 11n),
            body: { kvlistValue: { values: [{ key: 'msg', value: { stringValue: 'hi' } }, { key: 'a', value: { intValue: 1 } }] } } },
        ],
      }],
    }],
  };
  const r = await push('/otlp/v1/logs', Buffer.from(JSON.stringify(body)), { 'Content-Type': 'application/json' });
  assert.equal(r.status, 204, r.text);
  assert.equal(r.text, '');
  assert.deepEqual(await query('{service_name="otlp-json-svc"}'), expectedOtlp('otlp-json-svc'));
});

function otlpBody(svc) {
  return otlpProtobuf({
    resource: { 'service.name': svc, 'k8s.namespace.name': 'ns1', 'host.name': 'h1' },
    scope: { name: 'sc', version: '1.0' },
    records: [
      { time: T + 10n, severityNumber: 13, severityText: 'WARN', body: anyStr('otlp line one'),
        attrs: [['user.id', anyInt(42)]], traceId: TRACE, spanId: SPAN },
      { observed: T + 11n, body: msg(6, kv('msg', anyStr('hi')), kv('a', anyInt(1))) },
    ],
  });
}

test('OTLP protobuf, plain and gzip', async () => {
  let r = await push('/otlp/v1/logs', otlpBody('otlp-pb-svc'), { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await query('{service_name="otlp-pb-svc"}'), expectedOtlp('otlp-pb-svc'));
  r = await push('/otlp/v1/logs', gzipSync(otlpBody('otlp-gz-svc')), { 'Content-Type': 'application/x-protobuf', 'Content-Encoding': 'gzip' });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual(await query('{service_name="otlp-gz-svc"}'), expectedOtlp('otlp-gz-svc'));
});

test('OTLP errors are google.rpc.Status protobuf bodies', async () => {
  let r = await push('/otlp/v1/logs', Buffer.from('x'), { 'Content-Type': 'text/plain' });
  assert.equal(r.status, 400);
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal(statusMessage(r.buf), 'content type: text/plain is not supported');
  r = await push('/otlp/v1/logs', Buffer.from('x'), { 'Content-Type': 'application/json', 'Content-Encoding': 'br' });
  assert.equal(r.status, 400);
  assert.equal(statusMessage(r.buf), 'unsupported content encoding br: only gzip, lz4 and zstd are supported');
  r = await push('/otlp/v1/logs', Buffer.from('{"resourceLogs":{}}'), { 'Content-Type': 'application/json' });
  assert.equal(r.status, 400);
  assert.match(statusMessage(r.buf), /^error parsing OTLP JSON request: expected an array/);
  r = await push('/otlp/v1/logs', Buffer.from([0x0a, 0x05, 0x01]), { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 400);
  assert.match(statusMessage(r.buf), /^proto: /);
  r = await push('/otlp/v1/logs', Buffer.from('{"resourceLogs":[]}'), { 'Content-Type': 'application/json' });
  assert.equal(r.status, 422);
  assert.equal(statusMessage(r.buf), 'error at least one valid stream is required for ingestion');
  // a record too old for the limits: the rest is stored, the answer lists the failure
  const old = otlpProtobuf({ resource: { 'service.name': 'otlp-old' }, scope: { name: '', version: '' },
    records: [{ time: 1000000000000000000n, body: anyStr('old') }, { time: T + 12n, body: anyStr('new') }] });
  r = await push('/otlp/v1/logs', old, { 'Content-Type': 'application/x-protobuf' });
  assert.equal(r.status, 400);
  assert.match(statusMessage(r.buf), /^entry for stream '\{service_name="otlp-old"\}' has timestamp too old: 2001-09-09T01:46:40Z/);
  assert.deepEqual((await query('{service_name="otlp-old"}'))[0].values.map((v) => v[1]), ['new']);
});

// ---- shippers' requests, byte for byte (reference 2.1 and 2.2) --------------------------------------
// Sent over a raw socket, headers in the order and spelling each shipper uses, to a server with
// auth_enabled so the tenant header matters.

import net from 'node:net';

// Writes one raw HTTP/1.1 request; resolves with {status, headers, body} of the answer.
function rawRequest(port, head, body) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const len = status === 204 ? 0 : Number(headers['content-length'] || 0);
      if (buf.length < end + 4 + len) return;
      sock.destroy();
      resolve({ status, headers, body: buf.subarray(end + 4, end + 4 + len).toString('utf8') });
    });
    sock.on('error', reject);
    sock.write(Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'latin1'), body]));
  });
}

async function tenantQuery(s, tenant, q) {
  const r = await queryRange(s, { query: q, start: String(T - 3600n * 1000000000n), end: String(BigInt(Date.now()) * 1000000n + 1000000000n),
    direction: 'forward', limit: '100' }, { 'X-Scope-OrgID': tenant, 'X-Loki-Response-Encoding-Flags': 'categorize-labels' });
  assert.equal(r.status, 200, r.text);
  return r.json().data.result;
}

test('Fluent Bit out_loki: gzip JSON, one stream object per record, Basic auth, tenant header', async () => {
  const s = await new Strata({ args: ['-auth_enabled=true'] }).start();
  try {
    // As out_loki builds it with `labels job=fluent-bit, $kubernetes['namespace_name'], $kubernetes['pod_name']`
    // and `line_format json`: record-derived labels, so one stream object per record (same label sets
    // repeat, not sorted by time); the line is the record as compact JSON with non-ASCII escaped.
    // inner: the record as Fluent Bit's msgpack-to-JSON writes it (compact, \uXXXX for non-ASCII,
    // \n for a newline); it travels as a JSON string inside the push body
    const inner = (log, level, pod) => `{"log":"${log}","level":"${level}","kubernetes":{"namespace_name":"shop","pod_name":"${pod}"}}`;
    const rec = (ts, pod, log, level) => `{"stream":{"job":"fluent-bit","kubernetes_namespace_name":"shop","kubernetes_pod_name":"${pod}"},` +
      `"values":[["${ts}",${JSON.stringify(inner(log, level, pod))}]]}`;
    const json = `{"streams":[${[
      rec(T + 21n, 'web-0', 'GET /caf\\u00e9 200\\n', 'info'),
      rec(T + 23n, 'web-1', 'upstream timeout', 'error'),
      rec(T + 20n, 'web-0', 'GET / 200', 'info'), // earlier than the record before it: accepted
      rec(T + 22n, 'web-0', 'disk 91% full', 'warn'),
    ].join(',')}]}`;
    const body = gzipSync(Buffer.from(json));
    const r = await rawRequest(s.port, [
      'POST /loki/api/v1/push HTTP/1.1',
      `Host: 127.0.0.1:${s.port}`,
      `Content-Length: ${body.length}`,
      'User-Agent: Fluent-Bit',
      'Content-Type: application/json',
      'Content-Encoding: gzip',
      'X-Scope-OrgID: fluent-tenant',
      `Authorization: Basic ${Buffer.from('fluent:s3cret').toString('base64')}`,
    ], body);
    assert.equal(r.status, 204, r.body);
    const labels = (pod) => ({ job: 'fluent-bit', kubernetes_namespace_name: 'shop', kubernetes_pod_name: pod, service_name: 'fluent-bit' });
    const line = inner; // the line is the record's JSON text, byte for byte
    assert.deepEqual(await tenantQuery(s, 'fluent-tenant', '{job="fluent-bit"}'), [
      { stream: labels('web-0'), values: [
        [String(T + 20n), line('GET / 200', 'info', 'web-0'), { structuredMetadata: { detected_level: 'info' } }],
        [String(T + 21n), line('GET /caf\\u00e9 200\\n', 'info', 'web-0'), { structuredMetadata: { detected_level: 'info' } }],
        [String(T + 22n), line('disk 91% full', 'warn', 'web-0'), { structuredMetadata: { detected_level: 'warn' } }],
      ] },
      { stream: labels('web-1'), values: [
        [String(T + 23n), line('upstream timeout', 'error', 'web-1'), { structuredMetadata: { detected_level: 'error' } }],
      ] },
    ].sort((a, b) => (a.stream.kubernetes_pod_name < b.stream.kubernetes_pod_name ? -1 : 1)));
    assert.deepEqual(await tenantQuery(s, 'other-tenant', '{job="fluent-bit"}'), []);
  } finally {
    assert.equal(await s.stop(), 0, s.logs);
    s.cleanup();
  }
});

// PushRequest as Promtail/Alloy marshal it (gogo protobuf): fields in number order, zero-valued
// fields (nanos 0, no metadata) left out, labels sorted and joined by ", ".
function alloyPushRequest(streams) {
  return Buffer.concat(streams.map((s) => msg(1,
    str(1, s.labels),
    ...s.entries.map((e) => msg(2,
      msg(1, uint(1, e.ts / 1000000000n), ...(e.ts % 1000000000n ? [uint(2, e.ts % 1000000000n)] : [])),
      str(2, e.line),
      ...(e.md || []).map(([k, v]) => msg(3, str(1, k), str(2, v))))))));
}

test('Alloy and Promtail: snappy protobuf, their headers and User-Agent, Go\'s header spelling', async () => {
  const s = await new Strata({ args: ['-auth_enabled=true'] }).start();
  try {
    const secs = T / 1000000000n * 1000000000n; // a whole second: nanos is left out on the wire
    for (const [ua, job] of [['Alloy/v1.5.1 (linux; binary)', 'alloy'], ['promtail/2.9.10', 'promtail']]) {
      const body = snappy(alloyPushRequest([
        { labels: `{env="prod", filename="/var/log/syslog", job="${job}"}`, entries: [
          { ts: secs, line: 'Nov 26 12:00:00 web-1 sshd[1021]: Accepted publickey for deploy' },
          { ts: secs + 5n, line: 'level=error msg="disk failure" dev=sda', md: [['trace_id', '0af7651916cd43dd'], ['pod', 'web-1']] },
        ] },
        // Go's strconv.Quote: escaped quote and backslash, non-ASCII printable kept as UTF-8
        { labels: `{filename="C:\\\\logs\\\\\\"quoted\\".log", job="${job}", note="café"}`, entries: [{ ts: secs + 7n, line: 'windows line' }] },
      ]));
      // Go's net/http: Host, User-Agent, Content-Length, then the header map sorted and canonicalised
      // (X-Scope-OrgID becomes X-Scope-Orgid), then Accept-Encoding
      const r = await rawRequest(s.port, [
        'POST /loki/api/v1/push HTTP/1.1',
        `Host: 127.0.0.1:${s.port}`,
        `User-Agent: ${ua}`,
        `Content-Length: ${body.length}`,
        'Content-Type: application/x-protobuf',
        'X-Scope-Orgid: shipper-tenant',
        'Accept-Encoding: gzip',
      ], body);
      assert.equal(r.status, 204, r.body);
      assert.deepEqual(await tenantQuery(s, 'shipper-tenant', `{job="${job}"}`), [
        { stream: { env: 'prod', filename: '/var/log/syslog', job, service_name: job }, values: [
          [String(secs), 'Nov 26 12:00:00 web-1 sshd[1021]: Accepted publickey for deploy', { structuredMetadata: { detected_level: 'unknown' } }],
          [String(secs + 5n), 'level=error msg="disk failure" dev=sda', { structuredMetadata: { trace_id: '0af7651916cd43dd', pod: 'web-1', detected_level: 'error' } }],
        ] },
        { stream: { filename: 'C:\\logs\\"quoted".log', job, note: 'café', service_name: job }, values: [
          [String(secs + 7n), 'windows line', { structuredMetadata: { detected_level: 'unknown' } }],
        ] },
      ]);
    }
    assert.deepEqual(await tenantQuery(s, 'fake', '{job=~"alloy|promtail"}'), []);
  } finally {
    assert.equal(await s.stop(), 0, s.logs);
    s.cleanup();
  }
});
