// clients.test.mjs: the real npm logging clients against the real binary: winston + winston-loki in
// JSON mode and in protobuf (snappy) mode, pino + pino-loki (as a pino transport, in its worker
// thread), and the OpenTelemetry JS SDK with its OTLP/HTTP log exporters (JSON and protobuf, plain
// and gzip). Each client is flushed deterministically (its own close/flush API), then the lines are
// read back through /loki/api/v1/query_range with categorize-labels, and labels, lines, timestamps
// and structured metadata (with Strata's service_name discovery and detected_level, as Loki 3 adds
// them) are compared exactly. The server runs with auth_enabled, so every client also has to send
// its tenant header through its own options.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import winston from 'winston';
import LokiTransport from 'winston-loki';
import pino from 'pino';
import { logs as logsApi, SeverityNumber } from '@opentelemetry/api-logs';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { LoggerProvider, BatchLogRecordProcessor, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPLogExporter as OTLPHttpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { Strata, queryRange } from './lib/strata.mjs';

const require = createRequire(import.meta.url);
const TENANT = 'client-tests';
const HDR = { 'X-Scope-OrgID': TENANT };
// whole milliseconds, a minute ago (winston-loki and pino-loki carry millisecond timestamps)
const T0 = Date.now() - 60000;
const ns = (ms) => String(BigInt(ms) * 1000000n);

let srv;
before(async () => { srv = await new Strata({ args: ['-auth_enabled=true'] }).start(); });
after(async () => {
  assert.equal(await srv.stop(), 0, srv.logs);
  srv.cleanup();
});

// query_range over the test's window, forward, with stream labels and metadata told apart.
async function query(q, { tenant = TENANT } = {}) {
  const r = await queryRange(srv, { query: q, start: ns(T0 - 3600000), end: ns(Date.now() + 60000), direction: 'forward', limit: '1000' },
    { 'X-Scope-OrgID': tenant, 'X-Loki-Response-Encoding-Flags': 'categorize-labels' });
  assert.equal(r.status, 200, r.text);
  const body = r.json();
  assert.deepEqual(body.data.encodingFlags, ['categorize-labels']);
  // streams in a stable order (by their label string)
  const key = (l) => Object.keys(l).sort().map((k) => `${k}=${l[k]}`).join(',');
  return body.data.result.sort((a, b) => (key(a.stream) < key(b.stream) ? -1 : 1));
}

// ---- winston + winston-loki ----------------------------------------------------------------------

function winstonLogger(json, app) {
  const errors = [];
  const transport = new LokiTransport({
    host: srv.url,
    json,
    labels: { app, env: 'it' },
    headers: HDR,
    batching: true,
    interval: 3600, // never on its own: close() sends the batch
    replaceTimestamp: false,
    gracefulShutdown: false,
    onConnectionError: (e) => errors.push(e),
  });
  const logger = winston.createLogger({ level: 'debug', transports: [transport] });
  return { logger, transport, errors };
}

// Logs three lines at three levels and closes the transport (which sends the batch and waits for
// the answer).
async function winstonRun(json, app) {
  const { logger, transport, errors } = winstonLogger(json, app);
  logger.info('user logged in', { timestamp: new Date(T0 + 1).toISOString(), user: 'u1', attempt: 2 });
  logger.warn('disk almost full', { timestamp: new Date(T0 + 2).toISOString(), mount: '/var' });
  logger.error('payment failed', { timestamp: new Date(T0 + 3).toISOString(), order: { id: 7, items: ['a', 'b'] } });
  logger.info('no metadata at all', { timestamp: new Date(T0 + 4).toISOString() });
  await transport.close();
  assert.deepEqual(errors, []);
  return transport;
}

test('winston-loki, JSON mode: labels, lines, ms timestamps and metadata (the rest of the log call)', async () => {
  const transport = await winstonRun(true, 'winston-json');
  assert.equal(transport.batcher.contentType, 'application/json');
  const base = { app: 'winston-json', env: 'it', service_name: 'winston-json' };
  assert.deepEqual(await query('{app="winston-json"}'), [
    { stream: { ...base, level: 'error' }, values: [
      [ns(T0 + 3), 'payment failed {"order":{"id":7,"items":["a","b"]},"level":"error"}',
        { structuredMetadata: { level: 'error', order: '{"id":7,"items":["a","b"]}', detected_level: 'error' } }],
    ] },
    { stream: { ...base, level: 'info' }, values: [
      [ns(T0 + 1), 'user logged in {"user":"u1","attempt":2,"level":"info"}',
        { structuredMetadata: { user: 'u1', attempt: '2', level: 'info', detected_level: 'info' } }],
      [ns(T0 + 4), 'no metadata at all {"level":"info"}', { structuredMetadata: { level: 'info', detected_level: 'info' } }],
    ] },
    { stream: { ...base, level: 'warn' }, values: [
      [ns(T0 + 2), 'disk almost full {"mount":"/var","level":"warn"}',
        { structuredMetadata: { mount: '/var', level: 'warn', detected_level: 'warn' } }],
    ] },
  ]);
});

test('winston-loki, protobuf mode (snappy): label string parsed, no metadata sent', async () => {
  // winston-loki uses protobuf when `json` is off and the `snappy` package loads
  assert.ok(require('snappy'));
  const transport = await winstonRun(false, 'winston-proto');
  assert.equal(transport.batcher.options.json, false);
  assert.equal(transport.batcher.contentType, 'application/x-protobuf');
  // its label string is `{level="info",app="winston-proto",env="it"}`: unsorted, no spaces
  const base = { app: 'winston-proto', env: 'it', service_name: 'winston-proto' };
  assert.deepEqual(await query('{app="winston-proto"}'), [
    { stream: { ...base, level: 'error' }, values: [
      [ns(T0 + 3), 'payment failed {"order":{"id":7,"items":["a","b"]},"level":"error"}', { structuredMetadata: { detected_level: 'error' } }],
    ] },
    { stream: { ...base, level: 'info' }, values: [
      [ns(T0 + 1), 'user logged in {"user":"u1","attempt":2,"level":"info"}', { structuredMetadata: { detected_level: 'info' } }],
      [ns(T0 + 4), 'no metadata at all {"level":"info"}', { structuredMetadata: { detected_level: 'info' } }],
    ] },
    { stream: { ...base, level: 'warn' }, values: [
      [ns(T0 + 2), 'disk almost full {"mount":"/var","level":"warn"}', { structuredMetadata: { detected_level: 'warn' } }],
    ] },
  ]);
});

// ---- pino + pino-loki --------------------------------------------------------------------------------

test('pino-loki as a pino transport: labels from props, levels mapped, metadata from `meta`', async () => {
  const transport = pino.transport({
    target: 'pino-loki',
    options: {
      host: srv.url,
      headers: HDR,
      labels: { app: 'pino-app' },
      propsToLabels: ['component'],
      batching: { interval: 3600 }, // flushed by end() below
      structuredMetaKey: 'meta',
    },
  });
  let time;
  const logger = pino({
    level: 'trace',
    base: { pid: 4242, hostname: 'pino-host' },
    timestamp: () => `,"time":${time}`, // pino's default is Date.now(): fixed here to check it exactly
  }, transport);
  time = T0 + 10;
  logger.info({ component: 'db', meta: { trace_id: 'abc123', attempt: 3 } }, 'connected');
  time = T0 + 11;
  logger.warn({ component: 'db' }, 'slow query');
  time = T0 + 12;
  logger.error({ err_code: 'E42' }, 'request failed');
  time = T0 + 13;
  logger.fatal('giving up');
  time = T0 + 14;
  logger.debug({ meta: { nested: { a: 1 } } }, 'details');
  // end the stream: the worker's close() pushes the batch and waits for Loki's answer, then exits
  transport.end();
  await once(transport, 'close');
  const base = { app: 'pino-app', hostname: 'pino-host', service_name: 'pino-app' };
  assert.deepEqual(await query('{app="pino-app"}'), [
    { stream: { ...base, component: 'db', level: 'info' }, values: [
      [ns(T0 + 10), `{"level":30,"time":${T0 + 10},"pid":4242,"component":"db","meta":{"trace_id":"abc123","attempt":3},"msg":"connected"}`,
        { structuredMetadata: { trace_id: 'abc123', attempt: '3', detected_level: 'info' } }],
    ] },
    // pino-loki names level 40 "warning"; detected_level normalises it
    { stream: { ...base, component: 'db', level: 'warning' }, values: [
      [ns(T0 + 11), `{"level":40,"time":${T0 + 11},"pid":4242,"component":"db","msg":"slow query"}`, { structuredMetadata: { detected_level: 'warn' } }],
    ] },
    { stream: { ...base, level: 'critical' }, values: [
      [ns(T0 + 13), `{"level":60,"time":${T0 + 13},"pid":4242,"msg":"giving up"}`, { structuredMetadata: { detected_level: 'critical' } }],
    ] },
    { stream: { ...base, level: 'debug' }, values: [
      [ns(T0 + 14), `{"level":20,"time":${T0 + 14},"pid":4242,"meta":{"nested":{"a":1}},"msg":"details"}`,
        { structuredMetadata: { nested: '{"a":1}', detected_level: 'debug' } }],
    ] },
    { stream: { ...base, level: 'error' }, values: [
      [ns(T0 + 12), `{"level":50,"time":${T0 + 12},"pid":4242,"err_code":"E42","msg":"request failed"}`, { structuredMetadata: { detected_level: 'error' } }],
    ] },
  ]);
});

// ---- OpenTelemetry JS SDK + OTLP/HTTP exporters --------------------------------------------------

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

// Emits four records through the SDK with the given exporter and flushes the provider.
async function otelRun(exporter, svc, { batch = true } = {}) {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({
      'service.name': svc,
      'service.namespace': 'shop',
      'deployment.environment.name': 'it',
      'host.name': 'otel-host', // not an index label: structured metadata
      'process.pid': 4242,
    }),
    // (this SDK version takes an options object: { exporter, ... })
    processors: [batch ? new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 3600000 }) : new SimpleLogRecordProcessor({ exporter })],
  });
  const logger = provider.getLogger('checkout', '2.1.0');
  const spanCtx = trace.setSpanContext(context.active(), { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: false });
  const sec = Math.floor(T0 / 1000);
  // HrTime [seconds, nanoseconds]: nanosecond precision end to end
  logger.emit({
    timestamp: [sec, 123456789], observedTimestamp: [sec, 223456789],
    severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: 'payment retry',
    attributes: { 'user.id': 'u-7', 'http.status_code': 503, retry: true, ratio: 0.25, tags: ['a', 'b'], req: { method: 'POST', path: '/pay' } },
    context: spanCtx,
  });
  logger.emit({
    timestamp: [sec, 123456790], observedTimestamp: [sec, 223456790],
    severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: { msg: 'card declined', code: 51 },
  });
  logger.emit({ timestamp: [sec, 123456791], observedTimestamp: [sec, 223456791], body: 'level=debug msg="no severity, level from the line"' });
  logger.emit({ timestamp: [sec, 123456792], observedTimestamp: [sec, 223456792], severityNumber: SeverityNumber.INFO, body: 'plain info' });
  await provider.forceFlush();
  await provider.shutdown();
  return sec;
}

function otelExpected(svc, sec) {
  const t = (n) => String(BigInt(sec) * 1000000000n + BigInt(n));
  const common = { host_name: 'otel-host', process_pid: '4242', scope_name: 'checkout', scope_version: '2.1.0' };
  return [{
    stream: { deployment_environment_name: 'it', service_name: svc, service_namespace: 'shop' },
    values: [
      [t(123456789), 'payment retry', { structuredMetadata: {
        user_id: 'u-7', http_status_code: '503', retry: 'true', ratio: '0.25', tags: '["a","b"]', req_method: 'POST', req_path: '/pay',
        observed_timestamp: t(223456789), severity_number: '13', severity_text: 'WARN', flags: '1', trace_id: TRACE_ID, span_id: SPAN_ID,
        ...common, detected_level: 'warn' } }],
      [t(123456790), '{"code":51,"msg":"card declined"}', { structuredMetadata: {
        observed_timestamp: t(223456790), severity_number: '17', severity_text: 'ERROR', ...common, detected_level: 'error' } }],
      [t(123456791), 'level=debug msg="no severity, level from the line"', { structuredMetadata: {
        observed_timestamp: t(223456791), ...common, detected_level: 'debug' } }],
      [t(123456792), 'plain info', { structuredMetadata: {
        observed_timestamp: t(223456792), severity_number: '9', ...common, detected_level: 'info' } }],
    ],
  }];
}

test('OpenTelemetry JS, OTLP/HTTP JSON exporter: Loki 3 mapping of resource, scope, record and trace context', async () => {
  const exporter = new OTLPHttpJsonExporter({ url: `${srv.url}/otlp/v1/logs`, headers: HDR });
  const sec = await otelRun(exporter, 'otel-json');
  assert.deepEqual(await query('{service_name="otel-json"}'), otelExpected('otel-json', sec));
});

test('OpenTelemetry JS, OTLP/HTTP protobuf exporter, plain and gzip', async () => {
  let sec = await otelRun(new OTLPProtoExporter({ url: `${srv.url}/otlp/v1/logs`, headers: HDR }), 'otel-proto', { batch: false });
  assert.deepEqual(await query('{service_name="otel-proto"}'), otelExpected('otel-proto', sec));
  sec = await otelRun(new OTLPProtoExporter({ url: `${srv.url}/otlp/v1/logs`, headers: HDR, compression: 'gzip' }), 'otel-proto-gz');
  assert.deepEqual(await query('{service_name="otel-proto-gz"}'), otelExpected('otel-proto-gz', sec));
  sec = await otelRun(new OTLPHttpJsonExporter({ url: `${srv.url}/otlp/v1/logs`, headers: HDR, compression: 'gzip' }), 'otel-json-gz');
  assert.deepEqual(await query('{service_name="otel-json-gz"}'), otelExpected('otel-json-gz', sec));
});

test('the clients\' tenant header is honoured: another tenant sees none of it, no header is 401', async () => {
  assert.deepEqual(await query('{service_name=~".+"}', { tenant: 'someone-else' }), []);
  const r = await queryRange(srv, { query: '{service_name=~".+"}' });
  assert.equal(r.status, 401);
  assert.equal(r.text, 'no org id\n');
  // and a client without the header gets the 401 back as an error
  const errors = [];
  const transport = new LokiTransport({ host: srv.url, json: true, labels: { app: 'no-tenant' }, batching: true, interval: 3600,
    replaceTimestamp: false, gracefulShutdown: false, clearOnError: true, onConnectionError: (e) => errors.push(e) });
  const logger = winston.createLogger({ transports: [transport] });
  logger.info('dropped', { timestamp: new Date(T0 + 5).toISOString() });
  await transport.close();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].statusCode, 401);
  assert.equal(errors[0].responseBody, 'no org id\n');
  assert.ok(logsApi); // the logs API package is what the SDK implements (its global is unused here)
});
