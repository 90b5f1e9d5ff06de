// auth.test.mjs: optional HTTP authentication (auth.credentials_file) against the real binary:
// Basic and Bearer credentials mapped to tenants, 401/403 answers, tenants implied by credentials,
// `strata auth hash`, a bad credentials file naming its line, and no secret in the server's log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Strata, STRATA_BIN, request, qs, tempDir } from './lib/strata.mjs';

const PASSWORD = 'correct horse battery staple';
const TOKEN = 'tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0';
let s;

function hash(secret, ...flags) {
  return execFileSync(STRATA_BIN, ['auth', 'hash', ...flags], { input: secret + '\n' }).toString().trim();
}

const basic = (user, pass) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

function push(headers, line = 'hello') {
  const now = BigInt(Date.now()) * 1000000n;
  return request(s, 'POST', '/loki/api/v1/push', {
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ streams: [{ stream: { job: 'auth' }, values: [[now.toString(), line]] }] }),
  });
}

before(async () => {
  const dir = tempDir('strata-auth-');
  const creds = path.join(dir, 'credentials');
  writeFileSync(creds, [
    '# tenants            kind    user   hash',
    `team-a basic alice ${hash(PASSWORD, '--iterations=20000')}`,
    `team-b,team-c bearer ${hash(TOKEN, '--bearer')}`,
    `* bearer ${hash('admin-token-0123456789', '--bearer')}`,
    '',
  ].join('\n'));
  s = new Strata({ args: ['-auth_enabled=true', `-auth.credentials_file=${creds}`] });
  await s.start();
});

after(async () => {
  await s.stop();
  s.cleanup();
});

test('strata auth hash formats', () => {
  assert.match(hash('x', '--bearer'), /^sha256\$[0-9a-f]{64}$/);
  assert.match(hash('x', '--iterations=1000'), /^pbkdf2-sha256\$1000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
  const p = spawnSync(STRATA_BIN, ['auth', 'hash', '--iterations=10'], { input: 'x\n' });
  assert.equal(p.status, 2);
});

test('missing or wrong credentials: 401 with WWW-Authenticate; /ready stays open', async () => {
  for (const h of [{}, { Authorization: basic('alice', 'nope') }, { Authorization: basic('bob', PASSWORD) },
    { Authorization: 'Bearer wrong' }, { Authorization: 'Digest abc' }]) {
    const r = await push({ 'X-Scope-OrgID': 'team-a', ...h });
    assert.equal(r.status, 401, JSON.stringify(h));
    assert.equal(r.text, 'unauthorized\n');
    assert.match(r.headers['www-authenticate'], /^Basic realm="strata"/);
  }
  assert.equal((await request(s, 'GET', '/ready')).status, 200);
  assert.equal((await request(s, 'POST', '/flush')).status, 401);
  assert.equal((await request(s, 'GET', '/config')).status, 401);
  assert.equal((await request(s, 'GET', `/loki/api/v1/labels?${qs({})}`)).status, 401);
});

test('basic credentials: their tenant, implied when the header is missing; others 403', async () => {
  const auth = { Authorization: basic('alice', PASSWORD) };
  assert.equal((await push({ ...auth, 'X-Scope-OrgID': 'team-a' }, 'a1')).status, 204);
  assert.equal((await push(auth, 'a2')).status, 204); // single tenant implied
  const r = await push({ ...auth, 'X-Scope-OrgID': 'team-b' });
  assert.equal(r.status, 403);
  assert.equal(r.text, 'these credentials are not allowed for this tenant\n');
  const q = await request(s, 'GET', `/loki/api/v1/query_range?${qs({ query: '{job="auth"}', since: '1h' })}`,
    { headers: auth });
  assert.equal(q.status, 200);
  const lines = q.json().data.result.flatMap((x) => x.values.map((v) => v[1])).sort();
  assert.deepEqual(lines, ['a1', 'a2']);
});

test('bearer credentials with two tenants: the header picks one and is required', async () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };
  assert.equal((await push({ ...auth, 'X-Scope-OrgID': 'team-b' }, 'b1')).status, 204);
  assert.equal((await push({ ...auth, 'X-Scope-OrgID': 'team-c' }, 'c1')).status, 204);
  const r = await push(auth);
  assert.equal(r.status, 401);
  assert.equal(r.text, 'no org id\n');
  assert.equal((await push({ ...auth, 'X-Scope-OrgID': 'team-a' })).status, 403);
  // tenants stay separate
  const q = await request(s, 'GET', `/loki/api/v1/query_range?${qs({ query: '{job="auth"}', since: '1h' })}`,
    { headers: { ...auth, 'X-Scope-OrgID': 'team-c' } });
  assert.deepEqual(q.json().data.result.flatMap((x) => x.values.map((v) => v[1])), ['c1']);
  // a wildcard credential reaches every tenant; /flush accepts it
  const admin = { Authorization: 'Bearer admin-token-0123456789' };
  assert.equal((await push({ ...admin, 'X-Scope-OrgID': 'team-a' })).status, 204);
  assert.equal((await request(s, 'POST', '/flush', { headers: admin })).status, 204);
});

test('no secret reaches the server log', () => {
  assert.ok(!s.logs.includes(PASSWORD));
  assert.ok(!s.logs.includes(TOKEN));
  assert.ok(!s.logs.includes(Buffer.from(`alice:${PASSWORD}`).toString('base64')));
});

test('a bad credentials file stops the server with file:line', async () => {
  const dir = tempDir('strata-auth-bad-');
  const creds = path.join(dir, 'credentials');
  writeFileSync(creds, 'team-a basic alice sha256$00\n');
  const bad = new Strata({ args: [`-auth.credentials_file=${creds}`] });
  await assert.rejects(bad.start(), /credentials:1: auth.credentials_file: basic credentials need a hash/);
  bad.cleanup();
});
