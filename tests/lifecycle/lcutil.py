"""Helpers for the lifecycle tests: moto_server, a strata server on a temporary data directory, the
`strata lifecycle run` CLI, pushes and queries over HTTP, and an S3 fault proxy.

Everything runs on 127.0.0.1 with free ports; nothing needs ../shared or the network."""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "objstore"))
import s3util  # noqa: E402  (Moto, free_port)

NS = 1_000_000_000
DAY = 86400 * NS

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
}


def strata_bin():
    env = os.environ.get("STRATA_BIN")
    if env:
        return env
    for d in ("build", "build-lead", "build-asan"):
        p = os.path.join(REPO, d, "server", "strata")
        if os.access(p, os.X_OK):
            return p
    raise RuntimeError("strata binary not found: build first or set STRATA_BIN")


def have_moto():
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError:
        return False
    return shutil.which("moto_server") is not None


def boto(service, url):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def day_start(ns):
    return ns - ns % DAY


def rfc3339(ns):
    return datetime.datetime.fromtimestamp(ns / NS, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lifecycle_yaml(s3_url, bucket, policies, rules, extra="", s3_extra="", enabled=False, pack="64MiB"):
    """The lifecycle: section. policies/rules are YAML text blocks (already indented by 4/4). With
    enabled, the server's own worker runs every second."""
    return f"""lifecycle:
  enabled: {"true" if enabled else "false"}
  interval: 1s
  pack_target_size: {pack}
{extra}  s3:
    endpoint: {s3_url}
    bucket: {bucket}
    path_style: true
    max_attempts: 6
    retry_base: 20ms
{s3_extra}  policies:
{policies}  rules:
{rules}"""


class Strata:
    """A strata data directory and config; serve() starts the server, run() runs CLI commands."""

    def __init__(self, lifecycle_section="", extra_yaml="", cfg_file=None, args=(), env=None):
        """With cfg_file, that file is used as is (plus args and env on every command)."""
        self.dir = tempfile.mkdtemp(prefix="strata-lc-")
        self.port = s3util.free_port()
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.cfg = cfg_file or os.path.join(self.dir, "strata.yaml")
        if cfg_file:
            self.proc = None
            self.log = None
            return
        with open(self.cfg, "w") as f:
            f.write(f"""common:
  path_prefix: {self.dir}/data
server:
  http_listen_port: {self.port}
  log_level: warn
ingester:
  chunk_idle_period: 1h
limits_config:
  reject_old_samples_max_age: 4000d
  ingestion_rate_mb: 1000
  ingestion_burst_size_mb: 1000
{extra_yaml}{lifecycle_section}""")
        self.proc = None
        self.log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "STRATA_TEST_CRASH_AT"}
        e.update(AWS_ENV)
        e.update(self.extra_env)
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def serve(self, **env):
        self.log = open(os.path.join(self.dir, "serve.log"), "a")
        self.proc = subprocess.Popen([strata_bin(), "serve", f"-config.file={self.cfg}", *self.args], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=self.env(**env))
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata serve exited {self.proc.returncode}: {self.serve_log()[-3000:]}")
            try:
                if urllib.request.urlopen(self.url + "/ready", timeout=1).read().strip() == b"ready":
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("strata serve not ready in 30 s: " + self.serve_log()[-3000:])

    def serve_log(self):
        try:
            with open(os.path.join(self.dir, "serve.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, kill=False):
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP
    def request(self, method, path, body=None, headers=None, tenant=None):
        h = dict(headers or {})
        if tenant:
            h["X-Scope-OrgID"] = tenant
        data = body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def push(self, streams, tenant=None):
        """streams: [(labels dict, [(ts_ns, line), ...]), ...]"""
        body = {"streams": [{"stream": l, "values": [[str(ts), line] for ts, line in v]} for l, v in streams]}
        st, b = self.request("POST", "/loki/api/v1/push", body, tenant=tenant)
        if st != 204:
            raise AssertionError(f"push: {st} {b[:500]!r}")

    def flush(self):
        st, b = self.request("POST", "/flush")
        if st not in (200, 204):
            raise AssertionError(f"flush: {st} {b!r}")

    def query_range(self, query, start_ns, end_ns, limit=5000, direction="forward", tenant=None):
        q = urllib.parse.urlencode({"query": query, "start": str(start_ns), "end": str(end_ns), "limit": str(limit),
                                    "direction": direction})
        st, b = self.request("GET", "/loki/api/v1/query_range?" + q, tenant=tenant)
        return st, json.loads(b) if st == 200 else b.decode(errors="replace")

    def lines(self, query, start_ns, end_ns, tenant=None):
        """(sorted list of (ts, line), warnings) of a log query; fails on a non-200."""
        st, res = self.query_range(query, start_ns, end_ns, tenant=tenant)
        if st != 200:
            raise AssertionError(f"query {query}: {st} {res}")
        out = []
        for s in res["data"]["result"]:
            out.extend((int(ts), line) for ts, line in s["values"])
        return sorted(out), res.get("warnings", [])

    # ---- CLI
    def run(self, *args, env=None, timeout=600):
        return subprocess.run([strata_bin(), *args, f"-config.file={self.cfg}", *self.args], capture_output=True,
                              text=True,
                              env=self.env(**(env or {})), timeout=timeout)

    def lifecycle(self, now_ns=None, *args, env=None, expect=0):
        a = ["lifecycle", "run"]
        if now_ns is not None:
            a.append(f"--now={rfc3339(now_ns)}")
        p = self.run(*a, *args, env=env)
        if expect is not None and p.returncode != expect:
            raise AssertionError(f"lifecycle run {args} exited {p.returncode} (want {expect}):\n"
                                 f"stdout: {p.stdout[-4000:]}\nstderr: {p.stderr[-4000:]}")
        return p

    def local_chunk_files(self):
        root = os.path.join(self.dir, "data", "chunks")
        out = []
        for d, _, files in os.walk(root):
            if ".open" in d:
                continue
            out.extend(os.path.join(d, f) for f in files if f.endswith((".chunk", ".pack")))
        return out


def list_versions(s3, bucket):
    """{key: [(version id, storage class, is latest)]}, delete markers excluded."""
    out = {}
    kw = {"Bucket": bucket}
    while True:
        r = s3.list_object_versions(**kw)
        for v in r.get("Versions", []):
            out.setdefault(v["Key"], []).append((v["VersionId"], v.get("StorageClass", "STANDARD"), v["IsLatest"]))
        if not r.get("IsTruncated"):
            return out
        kw["KeyMarker"] = r["NextKeyMarker"]
        kw["VersionIdMarker"] = r["NextVersionIdMarker"]


def parse_pack(data):
    """The footer of a pack object: (tenant, policy, [(chunk id, offset, length, crc32)])."""
    import struct
    import zlib
    assert data[-4:] == b"STPK", "pack magic"
    footer_off, flen, fcrc, version = struct.unpack_from("<QIII", data, len(data) - 24)
    assert version == 1
    f = data[footer_off:footer_off + flen]
    assert zlib.crc32(f) == fcrc, "footer crc"
    pos = 0

    def uvarint():
        nonlocal pos
        x = shift = 0
        while True:
            b = f[pos]
            pos += 1
            x |= (b & 0x7F) << shift
            if b < 0x80:
                return x
            shift += 7

    def lstr():
        nonlocal pos
        n = uvarint()
        s = f[pos:pos + n].decode()
        pos += n
        return s

    tenant, policy = lstr(), lstr()
    n = uvarint()
    entries = []
    for _ in range(n):
        cid = struct.unpack_from("<Q", f, pos)[0]
        pos += 8
        off, length = uvarint(), uvarint()
        crc = struct.unpack_from("<I", f, pos)[0]
        pos += 4
        uvarint()
        uvarint()
        pos += 8
        entries.append((cid, off, length, crc))
        assert zlib.crc32(data[off:off + length]) == crc, f"chunk {cid:016x} crc"
    return tenant, policy, entries


class FaultProxy:
    """An HTTP proxy in front of moto_server that fails requests by a script: for each distinct
    (method, path, query) the first attempt gets the next fault of `faults` (cycling), later
    attempts pass through. Faults: "503" (SlowDown), "500" (InternalError), "reset" (connection
    closed without an answer), "slow" (no answer for `slow_s` seconds)."""

    def __init__(self, upstream, faults=("503", "500", "reset", "slow"), slow_s=3.0):
        import http.server
        self.upstream = upstream
        self.faults = list(faults)
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self.seen = set()
        self.injected = {f: 0 for f in self.faults}
        self.k = 0
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                ident = (self.command, self.path)
                fault = None
                with proxy.lock:
                    if ident not in proxy.seen:
                        proxy.seen.add(ident)
                        fault = proxy.faults[proxy.k % len(proxy.faults)]
                        proxy.k += 1
                        proxy.injected[fault] += 1
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_s)
                    self.close_connection = True
                    return
                if fault in ("503", "500"):
                    code = "SlowDown" if fault == "503" else "InternalError"
                    b = (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected</Message>"
                         f"</Error>").encode()
                    self.send_response(int(fault))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                req = urllib.request.Request(proxy.upstream + self.path, data=body if n or self.command in (
                    "PUT", "POST") else None, method=self.command, headers=headers)
                try:
                    r = urllib.request.urlopen(req, timeout=60)
                    status, rh, rb = r.status, r.getheaders(), r.read()
                except urllib.error.HTTPError as e:
                    status, rh, rb = e.code, e.headers.items(), e.read()
                self.send_response(status)
                length = str(len(rb))
                for k, v in rh:
                    if k.lower() == "content-length" and self.command == "HEAD":
                        length = v  # the object's size
                    elif k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(rb)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
