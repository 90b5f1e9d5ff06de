// metrics.test.mjs: /metrics after real traffic (pushes, a query, a rejected query, an unknown path)
// is valid Prometheus text exposition by Prometheus's own checker (`promtool check metrics`, from
// Debian's prometheus package, installed by scripts/deps.sh), and its counters count that traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Strata, request, pushJSON, queryRange } from './lib/strata.mjs';

const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name.replace(/[{}"=,/]/g, '\\$&')} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};

test('/metrics passes promtool check metrics and counts the traffic', async () => {
  const srv = await new Strata().start();
  try {
    const t = BigInt(Date.now()) * 1000000n;
    const r = await pushJSON(srv, [{ stream: { job: 'm' }, values: [[String(t), 'a'], [String(t + 1n), 'b']] }]);
    assert.equal(r.status, 204, r.text);
    const q = await queryRange(srv, { query: '{job="m"}', start: String(t - 1000n), end: String(t + 1000n) });
    assert.equal(q.status, 200, q.text);
    assert.equal((await queryRange(srv, { query: '{job="m"', start: String(t - 1000n), end: String(t + 1000n) })).status, 400);
    assert.equal((await request(srv, 'GET', '/no/such/path')).status, 404);

    const m = await request(srv, 'GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
    assert.equal(check.error, undefined, 'promtool not found: scripts/deps.sh installs Debian\'s prometheus package');
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    assert.equal((check.stdout + check.stderr).trim(), '');

    assert.equal(metric(m.text, 'strata_ingester_entries_total'), 2);
    assert.ok(metric(m.text, 'strata_http_requests_total{route="notfound",method="GET",code="404"}') >= 1);
    assert.equal(await srv.stop(), 0);
  } finally {
    await srv.kill();
    srv.cleanup();
  }
});
