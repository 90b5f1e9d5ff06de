"""Fault tests of the objstore S3 client against a scripted HTTP server (stdlib http.server): 503
SlowDown, 500, connection resets and responses slower than the timeout for the first N attempts (the
client retries and succeeds), failures on every attempt (the client gives up after max attempts with the
right error), clock skew, a retried CompleteMultipartUpload that meets NoSuchUpload, checksum mismatches,
and the IMDSv2 / container credential sources.

Run: python3 -m unittest discover -s tests/objstore"""
import base64
import datetime
import email.utils
import hashlib
import http.server
import json
import os
import socket
import struct
import tempfile
import threading
import time
import unittest
import urllib.parse
import zlib

import s3util


class FakeS3:
    """A tiny in-memory S3 whose answers follow a script: each request pops the next action
    ("ok" when the script is empty, or `default`)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.script = []
        self.default = "ok"
        self.requests = []
        self.objects = {}
        self.uploads = {}
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, script=(), default="ok"):
        with self.lock:
            self.script = list(script)
            self.default = default
            self.requests = []

    def s3_requests(self):
        return [r for r in self.requests if not r["path"].startswith(("/latest/", "/ecs"))]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amz-request-id", "REQ%d" % len(fake.requests))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def error(self, status, code, extra=""):
                self.reply(status, (f"<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>scripted {code}"
                                    f"</Message>{extra}<RequestId>R1</RequestId></Error>").encode(),
                           {"Content-Type": "application/xml"})

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
                req = {"method": self.command, "path": u.path, "query": q, "headers": dict(self.headers),
                       "body": body}
                if u.path.startswith("/latest/") or u.path.startswith("/ecs"):
                    with fake.lock:
                        fake.requests.append(req)
                    return self.credentials(u.path, req)
                with fake.lock:
                    fake.requests.append(req)
                    action = fake.script.pop(0) if fake.script else fake.default
                if action == "503":
                    return self.error(503, "SlowDown")
                if action == "500":
                    return self.error(500, "InternalError")
                if action == "denied":
                    return self.error(403, "AccessDenied")
                if action == "nosuchupload":
                    return self.error(404, "NoSuchUpload")
                if action == "skew":
                    self.send_response_only(403)  # no automatic Date: ours is an hour ahead
                    b = b"<Error><Code>RequestTimeTooSkewed</Code><Message>skewed</Message></Error>"
                    self.send_header("Content-Length", str(len(b)))
                    self.send_header("Date", email.utils.formatdate(time.time() + 3600, usegmt=True))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(b)
                    return
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if action == "sleep":
                    time.sleep(1.5)
                    self.close_connection = True
                    return
                return self.ok(u, q, body, action)

            def ok(self, u, q, body, action):
                key = urllib.parse.unquote(u.path)
                m = self.command
                if m == "PUT" and "partNumber" in q:
                    fake.uploads[q["uploadId"][0]][int(q["partNumber"][0])] = body
                    return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest(),
                                                 "x-amz-checksum-crc32": self.headers.get("x-amz-checksum-crc32", "")})
                if m == "PUT":
                    fake.objects[key] = body
                    crc = self.headers.get("x-amz-checksum-crc32", "")
                    return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest(),
                                                 "x-amz-checksum-crc32": "AAAAAA==" if action == "badcrc" else crc})
                if m == "POST" and "uploads" in q:
                    uid = "upload-%d" % len(fake.uploads)
                    fake.uploads[uid] = {}
                    return self.reply(200, ("<InitiateMultipartUploadResult><UploadId>%s</UploadId>"
                                            "</InitiateMultipartUploadResult>" % uid).encode())
                if m == "POST" and "uploadId" in q:
                    parts = fake.uploads.pop(q["uploadId"][0], None)
                    if parts is None:
                        return self.error(404, "NoSuchUpload")
                    data = b"".join(parts[i] for i in sorted(parts))
                    fake.objects[key] = data
                    etag = hashlib.md5(b"".join(hashlib.md5(parts[i]).digest() for i in sorted(parts))).hexdigest()
                    fake.etags[key] = '"%s-%d"' % (etag, len(parts))
                    if action == "complete500":  # completed, but the answer is lost
                        return self.error(500, "InternalError")
                    return self.reply(200, ("<CompleteMultipartUploadResult><ETag>%s</ETag>"
                                            "</CompleteMultipartUploadResult>" % fake.etags[key]).encode())
                if m == "GET" and "retention" in q:
                    return self.reply(200, b"<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                                           b"<Mode>COMPLIANCE</Mode><RetainUntilDate>2031-02-03T04:05:06.000Z"
                                           b"</RetainUntilDate></Retention>")
                if m in ("GET", "HEAD"):
                    data = fake.objects.get(key, b"hello world")
                    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
                    if action == "badgetcrc":
                        crc = "AAAAAA=="
                    etag = fake.etags.get(key, '"%s"' % hashlib.md5(data).hexdigest())
                    return self.reply(200, data, {"ETag": etag, "x-amz-checksum-crc32": crc,
                                                  "x-amz-restore": 'ongoing-request="true"'})
                if m == "DELETE":
                    return self.reply(204)
                return self.error(400, "InvalidRequest")

            def credentials(self, path, req):
                exp = datetime.datetime.utcnow() + datetime.timedelta(seconds=fake.cred_ttl)
                doc = json.dumps({"Code": "Success", "AccessKeyId": "ASIAFAKEIMDS", "SecretAccessKey": "imds-secret",
                                  "Token": "imds-session-token", "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")})
                if path == "/latest/api/token" and self.command == "PUT":
                    if self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") != "21600":
                        return self.reply(400)
                    return self.reply(200, b"IMDSTOKEN")
                if self.headers.get("X-aws-ec2-metadata-token") == "IMDSTOKEN":
                    if path == "/latest/meta-data/iam/security-credentials/":
                        return self.reply(200, b"strata-role\n")
                    if path == "/latest/meta-data/iam/security-credentials/strata-role":
                        return self.reply(200, doc.encode())
                if path == "/ecs-creds" and self.headers.get("Authorization") == "ecs-auth-token":
                    return self.reply(200, doc.replace("ASIAFAKEIMDS", "ASIAFAKEECS").encode())
                return self.reply(401)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        fake.etags = {}
        fake.cred_ttl = 3600
        return H


class Faults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if s3util.selftest_path() is None:
            raise unittest.SkipTest("strata-s3-selftest not built (set STRATA_S3_SELFTEST)")
        cls.fake = FakeS3()
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.tmp.cleanup()

    def env(self, **kw):
        base = dict(AWS_ACCESS_KEY_ID="AKIDFAULT", AWS_SECRET_ACCESS_KEY="fault-secret",
                    STRATA_S3_ENDPOINT=self.fake.url, STRATA_S3_MAX_ATTEMPTS=4, STRATA_S3_RETRY_BASE_MS=20,
                    STRATA_S3_TIMEOUT_MS=700)
        base.update(kw)
        return s3util.base_env(**base)

    def run_st(self, *args, **env):
        return s3util.run(self.env(**env), *args)

    def path(self, name, data=None):
        p = os.path.join(self.tmp.name, name)
        if data is not None:
            with open(p, "wb") as f:
                f.write(data)
        return p

    def test_transient_failures_are_retried(self):
        for kind in ("503", "500", "reset", "sleep"):
            with self.subTest(kind=kind):
                self.fake.reset([kind, kind])
                t0 = time.time()
                r = self.run_st("get", "bkt", "obj", self.path("out"), STRATA_S3_METRICS=1)
                self.assertEqual(r["rc"], 0, r)
                self.assertEqual(r["attempts"], 3)
                self.assertEqual(len(self.fake.s3_requests()), 3)
                with open(self.path("out"), "rb") as f:
                    self.assertEqual(f.read(), b"hello world")
                self.assertIn('strata_s3_retries_total{op="GetObject"} 2', r["metrics"])
                self.assertLess(time.time() - t0, 10)
        # metrics name the outcome of each attempt
        self.fake.reset(["503"])
        r = self.run_st("get", "bkt", "obj", self.path("out"), STRATA_S3_METRICS=1)
        self.assertIn('strata_s3_requests_total{op="GetObject",code="503"} 1', r["metrics"])
        self.assertIn('strata_s3_requests_total{op="GetObject",code="200"} 1', r["metrics"])
        self.assertIn("strata_s3_request_duration_seconds_bucket", r["metrics"])

    def test_gives_up_after_max_attempts(self):
        for kind, rc, code in (("503", s3util.ST_S3_EUNAVAILABLE, "SlowDown"),
                               ("500", s3util.ST_S3_EUNAVAILABLE, "InternalError"),
                               ("reset", s3util.ST_S3_ENETWORK, "Network"),
                               ("sleep", s3util.ST_ETIMEOUT, "Timeout")):
            with self.subTest(kind=kind):
                self.fake.reset(default=kind)
                r = self.run_st("get", "bkt", "obj", self.path("out"), STRATA_S3_MAX_ATTEMPTS=3)
                self.assertEqual((r["rc"], r["code"], r["attempts"]), (rc, code, 3), r)
                self.assertEqual(len(self.fake.s3_requests()), 3)
        self.fake.reset(default="denied")  # 4xx: never retried
        r = self.run_st("get", "bkt", "obj", self.path("out"))
        self.assertEqual((r["rc"], r["code"], r["attempts"], r["status"]), (s3util.ST_S3_EACCESS, "AccessDenied", 1, 403))
        self.assertEqual(len(self.fake.s3_requests()), 1)

    def test_put_retries_resend_the_whole_body(self):
        data = os.urandom(3 << 20)
        p = self.path("body", data)
        for flag in ([], ["--fd"]):
            with self.subTest(fd=bool(flag)):
                self.fake.reset(["reset", "500", "sleep"])
                r = self.run_st("put", "bkt", "dir/obj", p, *flag, STRATA_S3_TIMEOUT_MS=1000)
                self.assertEqual(r["rc"], 0, r)
                self.assertTrue(r["crc32_verified"])
                self.assertEqual(self.fake.objects["/bkt/dir/obj"], data)
                puts = self.fake.s3_requests()
                self.assertEqual(len(puts), 4)
                for q in puts:  # every attempt carried the full, correctly signed body
                    self.assertEqual(q["body"], data)
                    self.assertEqual(q["headers"]["x-amz-content-sha256"], hashlib.sha256(data).hexdigest())
                    self.assertEqual(q["headers"]["x-amz-checksum-crc32"],
                                     base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode())

    def test_clock_skew_is_corrected_once(self):
        self.fake.reset(["skew"])
        r = self.run_st("head", "bkt", "obj")
        self.assertEqual(r["rc"], 0, r)
        reqs = self.fake.s3_requests()
        self.assertEqual(len(reqs), 2)
        second = datetime.datetime.strptime(reqs[1]["headers"]["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        drift = (second - datetime.datetime.utcnow()).total_seconds()
        self.assertTrue(3500 < drift < 3700, drift)
        self.fake.reset(default="skew")  # still skewed after the correction: an auth error, no loop
        r = self.run_st("get", "bkt", "obj", self.path("out"))
        self.assertEqual((r["rc"], r["code"]), (s3util.ST_S3_EAUTH, "RequestTimeTooSkewed"))
        self.assertEqual(len(self.fake.s3_requests()), 2)

    def test_complete_retry_meets_nosuchupload(self):
        data = os.urandom((2 << 20) + 12345)
        p = self.path("mp", data)
        # create, 3 parts, Complete (applied but answered 500), retried Complete -> NoSuchUpload, HEAD
        self.fake.reset(["ok", "ok", "ok", "ok", "complete500", "ok", "ok"])
        r = self.run_st("put", "bkt", "mp/obj", p, STRATA_S3_PART_SIZE=1 << 20, STRATA_S3_THRESHOLD=1 << 20)
        self.assertEqual(r["rc"], 0, r)
        self.assertEqual(r["parts"], 3)
        self.assertEqual(r["etag"], self.fake.etags["/bkt/mp/obj"])
        self.assertEqual(self.fake.objects["/bkt/mp/obj"], data)
        methods = [(q["method"], sorted(q["query"])) for q in self.fake.s3_requests()]
        self.assertEqual(methods[-3:], [("POST", ["uploadId"]), ("POST", ["uploadId"]), ("HEAD", [])])
        for q in self.fake.s3_requests():
            if q["method"] == "PUT":
                self.assertIn("x-amz-checksum-crc32", q["headers"])
        # a multipart failure aborts the upload
        self.fake.reset(["ok", "denied"])
        r = self.run_st("put", "bkt", "mp/obj2", p, STRATA_S3_PART_SIZE=1 << 20, STRATA_S3_THRESHOLD=1 << 20)
        self.assertEqual(r["rc"], s3util.ST_S3_EACCESS)
        self.assertEqual([q["method"] for q in self.fake.s3_requests()], ["POST", "PUT", "DELETE"])

    def test_checksum_mismatch(self):
        self.fake.reset(["badcrc"])
        r = self.run_st("put", "bkt", "c", self.path("c", b"some bytes"))
        self.assertEqual((r["rc"], r["code"]), (s3util.ST_S3_ECHECKSUM, "ChecksumMismatch"), r)
        self.fake.reset(["badgetcrc"])
        r = self.run_st("get", "bkt", "c", self.path("cout"))
        self.assertEqual(r["rc"], s3util.ST_S3_ECHECKSUM, r)
        self.fake.reset()
        r = self.run_st("head", "bkt", "c")
        self.assertTrue(r["restore_present"] and r["restore_ongoing"])

    def test_get_object_retention(self):
        self.fake.reset()
        r = self.run_st("retention-get", "bkt", "locked")
        self.assertEqual((r["rc"], r["mode"], r["until"]), (0, "COMPLIANCE", 1927857906))

    def test_imds_and_container_credentials(self):
        self.fake.reset()
        self.fake.cred_ttl = 3600
        env = dict(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_EC2_METADATA_DISABLED=None,
                   AWS_EC2_METADATA_SERVICE_ENDPOINT=self.fake.url)
        r = self.run_st("creds", **env)
        self.assertEqual((r["rc"], r["source"], r["access_key"], r["has_token"]), (0, "imds", "ASIAFAKEIMDS", True), r)
        self.assertTrue(r["cached_same"])
        self.assertEqual(len([q for q in self.fake.requests if q["path"].endswith("strata-role")]), 1)  # cached
        self.assertNotIn("imds-secret", json.dumps(r))
        # an S3 call signs with the IMDS keys and sends the session token
        self.fake.reset()
        r = self.run_st("head", "bkt", "obj", **env)
        self.assertEqual(r["rc"], 0, r)
        h = self.fake.s3_requests()[0]["headers"]
        self.assertIn("Credential=ASIAFAKEIMDS/", h["Authorization"])
        self.assertEqual(h["X-Amz-Security-Token"], "imds-session-token")
        self.assertIn("x-amz-security-token", h["Authorization"])
        # keys expiring inside the refresh window are fetched again on the next use
        self.fake.reset()
        self.fake.cred_ttl = 300
        r = self.run_st("creds", **env)
        self.assertEqual(r["rc"], 0)
        self.assertEqual(len([q for q in self.fake.requests if q["path"].endswith("strata-role")]), 2)
        self.fake.cred_ttl = 3600
        # ECS/EKS container endpoint with an authorization token
        r = self.run_st("creds", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None,
                        AWS_CONTAINER_CREDENTIALS_FULL_URI=self.fake.url + "/ecs-creds",
                        AWS_CONTAINER_AUTHORIZATION_TOKEN="ecs-auth-token")
        self.assertEqual((r["rc"], r["source"], r["access_key"]), (0, "container", "ASIAFAKEECS"), r)


if __name__ == "__main__":
    unittest.main()
