// strata.mjs: starts the real strata binary on a free 127.0.0.1 port with a fresh data directory,
// waits for /ready, and stops it (SIGTERM, or SIGKILL to simulate a crash). Used by every
// integration test; nothing here is a mock.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const STRATA_BIN = process.env.STRATA_BIN || path.resolve(here, '../../../build/server/strata');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'strata-it-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Strata {
  constructor({ dataDir, port, args = [], config } = {}) {
    this.dataDir = dataDir || tempDir();
    this.port = port;
    this.args = args;
    this.config = config;
    this.proc = null;
    this.logs = '';
    this.exitCode = null;
  }

  get url() { return `http://127.0.0.1:${this.port}`; }

  async start({ timeoutMs = 20000 } = {}) {
    if (!this.port) this.port = await freePort();
    const args = ['serve', `-common.path_prefix=${this.dataDir}`, `-server.http_listen_port=${this.port}`,
      '-server.log_level=info', ...this.args];
    if (this.config) args.push(`-config.file=${this.config}`);
    this.proc = spawn(STRATA_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exitCode = null;
    // keep-alive connections belong to one server process: a socket pooled before a kill -9 and
    // reused after the restart on the same port would answer 'socket hang up'
    this.agent?.destroy();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
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
        const r = await request(this, 'GET', '/ready');
        if (r.status === 200) return this;
      } catch { /* not listening yet */ }
      await sleep(50);
    }
    throw new Error(`strata did not become ready:\n${this.logs}`);
  }

  async stop() {
    if (!this.proc || this.exitCode !== null) return this.exitCode;
    this.proc.kill('SIGTERM');
    const { code } = await this.exited;
    this.agent?.destroy();
    return code;
  }

  async kill() {
    if (!this.proc || this.exitCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
    this.agent?.destroy();
  }

  cleanup() {
    if (existsSync(this.dataDir)) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

// request(server, method, path, {body, headers}) -> {status, headers, text, json()}
export function request(server, method, p, { body, headers = {}, agent: ag } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path: p, headers, agent: ag || server.agent || agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          resolve({ status: res.statusCode, headers: res.headers, text, buf, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export function qs(params) {
  return new URLSearchParams(params).toString();
}

// Pushes Loki JSON; returns the response.
export function pushJSON(server, streams, { headers = {}, gzip = false } = {}) {
  return import('node:zlib').then(({ gzipSync }) => {
    let body = Buffer.from(JSON.stringify({ streams }));
    const h = { 'Content-Type': 'application/json', ...headers };
    if (gzip) {
      body = gzipSync(body);
      h['Content-Encoding'] = 'gzip';
    }
    return request(server, 'POST', '/loki/api/v1/push', { body, headers: h });
  });
}

export async function queryRange(server, params, headers) {
  const r = await request(server, 'GET', `/loki/api/v1/query_range?${qs(params)}`, { headers });
  return r;
}
