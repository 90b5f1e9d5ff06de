// tls.test.mjs: HTTPS on the real binary (server.http_tls_config) with node's https and the npm `ws`
// client. Certificates come from the openssl CLI into a temporary directory: a CA, a server
// certificate for 127.0.0.1/localhost and a client certificate. Push and query back over HTTPS with
// keep-alive, a live tail over wss://, plain HTTP and garbage on the TLS port (answered or closed,
// counted, the server keeps serving), mutual TLS (no client certificate or a foreign one is refused),
// a certificate reload on SIGHUP, check-config's TLS errors, and no key material in the log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { Strata, STRATA_BIN, freePort, qs, tempDir } from './lib/strata.mjs';

const nowNs = () => BigInt(Date.now()) * 1000000n;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let dir;
let pem; // {ca, cert, key, clientCert, clientKey, rogueCert, rogueKey}: file contents
let srv; // NoClientCert
let mtls; // RequireAndVerifyClientCert

function openssl(...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

// A key and a certificate signed by the CA (or self-signed when ca is false).
function issue(name, cn, { ca = true, server = false } = {}) {
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', `/O=Strata Test/CN=${cn}`);
  const ext = server ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
    : 'extendedKeyUsage=clientAuth\n';
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  if (ca) {
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-out', `${name}.crt`, '-extfile', `${name}.ext`);
  } else {
    openssl('x509', '-req', '-in', `${name}.csr`, '-signkey', `${name}.key`, '-days', '2', '-out', `${name}.crt`,
      '-extfile', `${name}.ext`);
  }
}

// Strata on HTTPS: Strata's process handling, but ready once https://127.0.0.1:<port>/ready answers
// (the base class polls plain HTTP, which this port answers with 400). client: for mutual TLS.
class TlsStrata extends Strata {
  constructor(opts = {}) {
    super(opts);
    this.client = opts.client || {};
  }

  get url() { return `https://127.0.0.1:${this.port}`; }

  async start({ timeoutMs = 20000 } = {}) {
    if (!this.port) this.port = await freePort();
    const args = ['serve', `-common.path_prefix=${this.dataDir}`, `-server.http_listen_port=${this.port}`,
      '-server.log_level=info', ...this.args];
    this.proc = spawn(STRATA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exitCode = null;
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve({ code, signal });
      });
    });
    this.proc.stdout.on('data', (d) => { this.logs += d; });
    this.proc.stderr.on('data', (d) => { this.logs += d; });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== null) throw new Error(`strata exited with ${this.exitCode}:\n${this.logs}`);
      try {
        if ((await req(this, 'GET', '/ready', { client: this.client })).status === 200) return this;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    throw new Error(`strata did not become ready over TLS:\n${this.logs}`);
  }
}

const agents = new Map();
function agentFor(opts) {
  const k = JSON.stringify(opts);
  if (!agents.has(k)) {
    agents.set(k, new https.Agent({ keepAlive: true, maxSockets: 4, ca: pem.ca, ...opts }));
  }
  return agents.get(k);
}

// HTTPS request; client: {cert, key} for mutual TLS. Resolves {status, headers, text, json(), reused}.
function req(server, method, p, { body, headers = {}, client = {} } = {}) {
  return new Promise((resolve, reject) => {
    const r = https.request({
      host: '127.0.0.1', port: server.port, method, path: p, headers, agent: agentFor(client),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text), reused: r.reusedSocket });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

function push(server, streams, opts = {}) {
  return req(server, 'POST', '/loki/api/v1/push', {
    ...opts, body: JSON.stringify({ streams }), headers: { 'Content-Type': 'application/json' },
  });
}

async function metric(server, name) {
  const r = await req(server, 'GET', '/metrics', { client: server.client });
  const m = r.text.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

before(async () => {
  dir = tempDir('strata-tls-');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.crt', '-days', '2', '-subj', '/O=Strata Test/CN=Strata Test CA');
  issue('server', 'localhost', { server: true });
  issue('client', 'client-1');
  issue('rogue', 'client-1', { ca: false });
  issue('server2', 'reloaded.localhost', { server: true });
  const rd = (f) => readFileSync(path.join(dir, f));
  pem = { ca: rd('ca.crt'), cert: rd('server.crt'), key: rd('server.key'), clientCert: rd('client.crt'),
    clientKey: rd('client.key'), rogueCert: rd('rogue.crt'), rogueKey: rd('rogue.key') };
  const tlsArgs = [`-server.http_tls_config.cert_file=${dir}/server.crt`,
    `-server.http_tls_config.key_file=${dir}/server.key`];
  srv = await new TlsStrata({ args: tlsArgs }).start();
  mtls = await new TlsStrata({
    args: [...tlsArgs, '-server.http_tls_config.client_auth_type=RequireAndVerifyClientCert',
      `-server.http_tls_config.client_ca_file=${dir}/ca.crt`, '-server.http_tls_config.min_version=VersionTLS13'],
    client: { cert: pem.clientCert, key: pem.clientKey },
  }).start();
});

after(async () => {
  for (const a of agents.values()) a.destroy();
  for (const s of [srv, mtls]) {
    if (!s) continue;
    assert.equal(await s.stop(), 0, s.logs);
    s.cleanup();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the startup log names the certificate, never the key', () => {
  assert.match(srv.logs, /msg="TLS enabled" subject="CN=localhost,O=Strata Test" not_after=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ client_auth_type=NoClientCert min_version=VersionTLS12/);
  assert.match(srv.logs, /msg="Strata ready" .* tls=true/);
  const keyBody = pem.key.toString().split('\n').filter((l) => l && !l.startsWith('-----'));
  for (const l of keyBody) assert.ok(!srv.logs.includes(l), 'key material in the log');
});

test('push and query back over HTTPS with keep-alive', async () => {
  const t0 = nowNs();
  const values = [];
  for (let i = 0; i < 20; i++) values.push([String(t0 + BigInt(i)), `tls line ${i} ${'x'.repeat(i * 100)}`]);
  const r = await push(srv, [{ stream: { job: 'tls', env: 'test' }, values }]);
  assert.equal(r.status, 204, r.text);
  // a large body (several TLS records and reads) too
  const big = [];
  for (let i = 0; i < 2000; i++) big.push([String(t0 + 1000n + BigInt(i)), `big ${i} ${'y'.repeat(900)}`]);
  assert.equal((await push(srv, [{ stream: { job: 'tls-big' }, values: big }])).status, 204);

  const q = await req(srv, 'GET', `/loki/api/v1/query_range?${qs({ query: '{job="tls"} |= "tls line"', start: String(t0 - 1000n), end: String(nowNs() + 1000000000n), limit: '100', direction: 'forward' })}`);
  assert.equal(q.status, 200, q.text);
  const got = q.json().data.result.flatMap((s) => s.values.map((v) => v[1]));
  assert.deepEqual(got, values.map((v) => v[1]));
  // and a large response (about 2 MB)
  const qb = await req(srv, 'GET', `/loki/api/v1/query_range?${qs({ query: '{job="tls-big"}', start: String(t0 - 1000n), end: String(nowNs() + 1000000000n), limit: '5000' })}`);
  assert.equal(qb.status, 200, qb.text);
  assert.ok(qb.text.length > 1800000, `${qb.text.length} bytes`);
  assert.equal(qb.json().data.result.reduce((n, x) => n + x.values.length, 0), 2000);

  // keep-alive: later requests reuse the connection
  let reused = 0;
  for (let i = 0; i < 5; i++) {
    const x = await req(srv, 'GET', '/loki/api/v1/labels');
    assert.equal(x.status, 200);
    if (x.reused) reused++;
  }
  assert.ok(reused >= 4, `reused ${reused} of 5`);
});

test('live tail over wss://', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${srv.port}/loki/api/v1/tail?${qs({ query: '{job="wss"}', start: String(nowNs()) })}`, { ca: pem.ca });
  const got = [];
  ws.on('message', (m) => { for (const s of JSON.parse(m.toString()).streams) for (const v of s.values) got.push(v[1]); });
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  for (let i = 0; i < 3; i++) {
    assert.equal((await push(srv, [{ stream: { job: 'wss' }, values: [[String(nowNs()), `over wss ${i}`]] }])).status, 204);
  }
  const end = Date.now() + 3000;
  while (got.length < 3 && Date.now() < end) await sleep(20);
  assert.deepEqual(got, ['over wss 0', 'over wss 1', 'over wss 2']);
  const closed = new Promise((r) => ws.on('close', (code) => r(code)));
  ws.close(1000, 'done');
  assert.equal(await closed, 1000);
});

test('plain HTTP on the TLS port gets Go\'s 400 and the server keeps serving', async () => {
  const before = await metric(srv, 'strata_http_tls_errors_total{reason="plain_http"}');
  const r = await new Promise((resolve, reject) => {
    const x = http.request({ host: '127.0.0.1', port: srv.port, path: '/ready', agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    x.on('error', reject);
    x.end();
  });
  assert.equal(r.status, 400);
  assert.equal(r.text, 'Client sent an HTTP request to an HTTPS server.\n');
  assert.equal(await metric(srv, 'strata_http_tls_errors_total{reason="plain_http"}'), before + 1);
  assert.equal((await req(srv, 'GET', '/ready')).status, 200);
});

test('garbage instead of a ClientHello is closed and counted', async () => {
  const before = await metric(srv, 'strata_http_tls_errors_total{reason="handshake"}');
  for (const junk of [Buffer.from('\x16\x03\x01\x00\x10not a client hello at all', 'latin1'), Buffer.alloc(512, 0xab),
    Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')]) {
    await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1', () => s.write(junk));
      s.on('data', () => {});
      s.on('error', () => resolve()); // a reset is a close too
      s.on('close', resolve);
      setTimeout(() => reject(new Error('the server kept a garbage connection open')), 5000).unref();
    });
  }
  assert.equal(await metric(srv, 'strata_http_tls_errors_total{reason="handshake"}'), before + 3);
  assert.equal((await req(srv, 'GET', '/ready')).status, 200);
});

test('mutual TLS: a client certificate from the CA is required', async () => {
  const good = { cert: pem.clientCert, key: pem.clientKey };
  const r = await push(mtls, [{ stream: { job: 'mtls' }, values: [[String(nowNs()), 'with a client certificate']] }], { client: good });
  assert.equal(r.status, 204, r.text);
  assert.equal((await req(mtls, 'GET', '/ready', { client: good })).status, 200);
  // the server's alert reaches the client (TLS 1.3: after the client's side of the handshake)
  await assert.rejects(req(mtls, 'GET', '/ready'), { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  await assert.rejects(req(mtls, 'GET', '/ready', { client: { cert: pem.rogueCert, key: pem.rogueKey } }),
    { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' });
  // TLS 1.2 is below this server's min_version
  await assert.rejects(req(mtls, 'GET', '/ready', { client: { ...good, maxVersion: 'TLSv1.2' } }),
    (e) => /protocol version/i.test(e.message));
  assert.equal((await req(mtls, 'GET', '/ready', { client: good })).status, 200); // still serving
  assert.ok(await metric(mtls, 'strata_http_tls_errors_total{reason="handshake"}') >= 3);
});

test('SIGHUP reloads the certificate for new connections', async () => {
  const s = new TlsStrata({
    args: [`-server.http_tls_config.cert_file=${dir}/live.crt`, `-server.http_tls_config.key_file=${dir}/live.key`],
  });
  writeFileSync(path.join(dir, 'live.crt'), pem.cert);
  writeFileSync(path.join(dir, 'live.key'), pem.key);
  await s.start();
  const subject = () => new Promise((resolve, reject) => {
    const r = https.request({ host: '127.0.0.1', port: s.port, path: '/ready', ca: pem.ca, agent: false }, (res) => {
      resolve(res.socket.getPeerCertificate().subject.CN);
      res.resume();
    });
    r.on('error', reject);
    r.end();
  });
  assert.equal(await subject(), 'localhost');
  writeFileSync(path.join(dir, 'live.crt'), readFileSync(path.join(dir, 'server2.crt')));
  writeFileSync(path.join(dir, 'live.key'), readFileSync(path.join(dir, 'server2.key')));
  s.proc.kill('SIGHUP');
  const end = Date.now() + 5000;
  while (!s.logs.includes('TLS certificate reloaded') && Date.now() < end) await sleep(20);
  assert.match(s.logs, /msg="TLS certificate reloaded" subject="CN=reloaded.localhost,O=Strata Test"/);
  assert.equal(await subject(), 'reloaded.localhost');
  // a broken file on reload keeps the previous certificate
  writeFileSync(path.join(dir, 'live.key'), 'not a key\n');
  s.proc.kill('SIGHUP');
  const end2 = Date.now() + 5000;
  while (!s.logs.includes('TLS reload failed') && Date.now() < end2) await sleep(20);
  assert.match(s.logs, /TLS reload failed/);
  assert.equal(await subject(), 'reloaded.localhost');
  assert.equal(await s.stop(), 0, s.logs);
  s.cleanup();
});

test('check-config names the TLS key at fault', () => {
  const cfg = path.join(dir, 'tls.yaml');
  writeFileSync(cfg, [
    'server:',
    '  http_tls_config:',
    `    cert_file: ${dir}/server.crt`,
    '    client_auth_type: VerifyClientCertIfGiven',
    '',
  ].join('\n'));
  const r = spawnSync(STRATA_BIN, ['check-config', `-config.file=${cfg}`]);
  assert.notEqual(r.status, 0);
  const out = r.stdout.toString() + r.stderr.toString();
  assert.match(out, /tls\.yaml:3: server\.http_tls_config\.key_file: required when server\.http_tls_config\.cert_file is set/);
  assert.match(out, /tls\.yaml:4: server\.http_tls_config\.client_ca_file: required when client_auth_type is VerifyClientCertIfGiven/);
  // a certificate that does not parse stops serve with the file named
  writeFileSync(path.join(dir, 'bad.crt'), 'garbage\n');
  const s = spawnSync(STRATA_BIN, ['serve', `-common.path_prefix=${dir}/bad-data`, '-server.http_listen_port=0',
    `-server.http_tls_config.cert_file=${dir}/bad.crt`, `-server.http_tls_config.key_file=${dir}/server.key`],
  { timeout: 20000 });
  assert.equal(s.status, 1);
  assert.match(s.stdout.toString() + s.stderr.toString(), /invalid server\.http_tls_config.*bad\.crt/);
});
