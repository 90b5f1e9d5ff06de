// cli.test.mjs: the strata command line: help, version, check-config (errors name file, line and key;
// exit codes), overrides, and the body-size limit answered with 413.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Strata, STRATA_BIN, tempDir, request } from './lib/strata.mjs';

const run = (...args) => spawnSync(STRATA_BIN, args, { encoding: 'utf8' });

test('help and version', () => {
  let r = run('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: strata <command>/);
  for (const cmd of ['serve', 'check-config']) {
    r = run(cmd, '--help');
    assert.equal(r.status, 0, cmd);
    assert.match(r.stdout, new RegExp(`Usage: strata ${cmd}`));
  }
  r = run('version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^strata, version \d+\.\d+\.\d+/);
  r = run('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
});

test('check-config reports every problem with file, line and key', () => {
  const dir = tempDir();
  const bad = path.join(dir, 'strata.yaml');
  writeFileSync(bad, [
    'server:',
    '  http_listen_port: abc',
    '  http_lisen_address: 0.0.0.0',
    'limits_config:',
    '  max_line_size: 12XB',
    '',
  ].join('\n'));
  let r = run('check-config', `-config.file=${bad}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /strata\.yaml:2: server\.http_listen_port: /);
  assert.match(r.stderr, /strata\.yaml:3: server\.http_lisen_address: unknown key/);
  assert.match(r.stderr, /strata\.yaml:5: limits_config\.max_line_size: /);
  const good = path.join(dir, 'good.yaml');
  writeFileSync(good, 'server:\n  http_listen_port: 3105\ncommon:\n  path_prefix: /tmp/strata-x\n');
  r = run('check-config', `-config.file=${good}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configuration is valid/);
  r = run('check-config', '-server.http_listen_port=99999');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /server\.http_listen_port/);
  r = run('check-config', `-config.file=${path.join(dir, 'missing.yaml')}`);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /missing\.yaml/);
  rmSync(dir, { recursive: true, force: true });
});

test('oversized push body: 413', async () => {
  const srv = await new Strata({ args: ['-distributor.max_recv_msg_size=1KB'] }).start();
  const line = 'x'.repeat(2000);
  const body = JSON.stringify({ streams: [{ stream: { job: 'big' }, values: [[String(Date.now() * 1e6), line]] }] });
  const r = await request(srv, 'POST', '/loki/api/v1/push', { body, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 413);
  assert.equal(await srv.stop(), 0);
  srv.cleanup();
});

test('serve refuses an invalid configuration before listening', () => {
  const r = run('serve', '-ingester.chunk_encoding=gzip');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /ingester\.chunk_encoding/);
});
