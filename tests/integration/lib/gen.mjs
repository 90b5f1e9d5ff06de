// gen.mjs: a deterministic generator of realistic log lines (syslog, Apache access log, logfmt and
// JSON application logs) over many streams, so tests pass on a fresh clone without ../shared.
// Same seed, same output.

export function rng(seed) {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
const HOSTS = ['web-1', 'web-2', 'db-1', 'cache-1', 'worker-1', 'worker-2', 'edge-1', 'edge-2'];
const PATHS = ['/', '/login', '/api/v1/users', '/api/v1/orders?id=42', '/static/app.js', '/health', '/search?q=ünïcode'];
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64)', 'curl/7.88.1', 'Go-http-client/1.1', 'kube-probe/1.29'];
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const SYSLOG_PROCS = ['sshd[1021]', 'kernel', 'systemd[1]', 'CRON[3310]', 'dhclient[855]'];
const SYSLOG_MSGS = [
  'Accepted publickey for deploy from 10.0.3.7 port 51234 ssh2',
  'Failed password for invalid user admin from 203.0.113.9 port 40022 ssh2',
  'Started Daily apt download activity.',
  'pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)',
  'eth0: link becomes ready',
  'Out of memory: Killed process 4242 (java) total-vm:8123456kB',
];

function ip(r) {
  return `${10 + Math.floor(r() * 200)}.${Math.floor(r() * 255)}.${Math.floor(r() * 255)}.${1 + Math.floor(r() * 254)}`;
}

export const FORMATS = ['syslog', 'access', 'logfmt', 'json'];

export function line(r, format, seq, tsNs) {
  const d = new Date(Number(tsNs / 1000000n));
  switch (format) {
    case 'syslog': {
      const mon = d.toUTCString().slice(8, 11);
      const day = String(d.getUTCDate()).padStart(2, ' ');
      return `${mon} ${day} ${d.toISOString().slice(11, 19)} ${pick(r, HOSTS)} ${pick(r, SYSLOG_PROCS)}: ${pick(r, SYSLOG_MSGS)} seq=${seq}`;
    }
    case 'access': {
      const status = pick(r, [200, 200, 200, 201, 204, 301, 404, 500, 503]);
      return `${ip(r)} - - [${d.toISOString()}] "${pick(r, ['GET', 'POST', 'PUT'])} ${pick(r, PATHS)} HTTP/1.1" ${status} ${Math.floor(r() * 50000)} "-" "${pick(r, AGENTS)}" seq=${seq}`;
    }
    case 'logfmt': {
      const lvl = pick(r, LEVELS);
      return `ts=${d.toISOString()} level=${lvl} caller=handler.go:${Math.floor(r() * 300)} msg="request done" method=GET status=${pick(r, [200, 404, 500])} duration=${(r() * 2).toFixed(3)}s user="u${Math.floor(r() * 100)}" seq=${seq}`;
    }
    default: {
      const lvl = pick(r, LEVELS);
      return JSON.stringify({ ts: d.toISOString(), level: lvl, msg: lvl === 'error' ? 'payment failed: card declined "visa"' : 'order processed', order_id: Math.floor(r() * 1e6), latency_ms: Math.floor(r() * 900), tags: ['a', 'b'], seq });
    }
  }
}

// Builds `n` entries spread over `streams` streams (labels job/host/env/format) with unique,
// increasing timestamps per stream starting at startNs, stepNs apart. Returns
// [{labels, entries: [[tsNsString, line], ...]}].
export function dataset({ seed = 1, streams = 12, n = 1200, startNs, stepNs = 1000000n }) {
  const r = rng(seed);
  const out = [];
  for (let s = 0; s < streams; s++) {
    const format = FORMATS[s % FORMATS.length];
    out.push({
      labels: { job: `${format}-app`, host: HOSTS[s % HOSTS.length], env: s % 3 === 0 ? 'prod' : 'dev', format },
      entries: [],
    });
  }
  for (let i = 0; i < n; i++) {
    const s = i % streams;
    const k = BigInt(out[s].entries.length);
    const ts = startNs + k * stepNs + BigInt(s);
    out[s].entries.push([ts.toString(), line(r, out[s].labels.format, i, ts)]);
  }
  return out;
}

export function toPush(ds) {
  return ds.map((s) => ({ stream: s.labels, values: s.entries }));
}
