"""End-to-end tests of the objstore S3 client against moto_server, each step checked independently with
boto3, plus a comparison of our SigV4 signer with botocore's S3SigV4Auth.

Run: python3 -m unittest discover -s tests/objstore   (STRATA_S3_SELFTEST=<path> to pick the binary)."""
import base64
import concurrent.futures
import datetime
import hashlib
import os
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import zlib

import s3util

try:
    import boto3
    import botocore.auth
    import botocore.awsrequest
    import botocore.config
    import botocore.credentials
    import botocore.exceptions
except ImportError:  # pragma: no cover
    boto3 = None

MOTO = s3util.Moto()


def setUpModule():
    if boto3 is None:
        raise unittest.SkipTest("boto3/botocore not installed")
    if s3util.selftest_path() is None:
        raise unittest.SkipTest("strata-s3-selftest not built (set STRATA_S3_SELFTEST)")
    if not MOTO.start():
        raise unittest.SkipTest("moto_server not on PATH")


def tearDownModule():
    MOTO.stop()


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class MotoS3(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = s3util.base_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                                  STRATA_S3_ENDPOINT=MOTO.url, STRATA_S3_MAX_ATTEMPTS=3,
                                  STRATA_S3_RETRY_BASE_MS=10)
        cls.s3 = boto3.client("s3", endpoint_url=MOTO.url, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1",
                              config=botocore.config.Config(max_pool_connections=16))
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def st(self, *args, **env):
        e = dict(self.env)
        e.update({k: str(v) for k, v in env.items()})
        return s3util.run(e, *args)

    def ok(self, *args, **env):
        r = self.st(*args, **env)
        self.assertEqual(r["rc"], 0, r)
        return r

    def file(self, name, data):
        p = os.path.join(self.tmp.name, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_object_flow(self):
        """create bucket (lock), put with CRC32, ranged get, head, copy to GLACIER, archived get, restore."""
        b = "flow-bucket"
        self.ok("create-bucket", b, "--lock")
        self.assertEqual(self.s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
                         ["ObjectLockEnabled"], "Enabled")
        self.ok("create-bucket", b, "--lock")  # existing bucket we own: success

        data = os.urandom(300_000)
        put = self.ok("put", b, "dir/chunk 1+$.bin", self.file("a", data), "--meta", "tenant=t1")
        self.assertTrue(put["crc32_verified"], put)
        self.assertEqual(put["crc32"], zlib.crc32(data))
        h = self.s3.head_object(Bucket=b, Key="dir/chunk 1+$.bin", ChecksumMode="ENABLED")
        self.assertEqual(h["ContentLength"], len(data))
        self.assertEqual(h["ChecksumCRC32"], crc32_b64(data))
        self.assertEqual(h["Metadata"], {"tenant": "t1"})
        self.assertEqual(h["ETag"], put["etag"])
        self.assertEqual(h["ETag"].strip('"'), hashlib.md5(data).hexdigest())

        out = os.path.join(self.tmp.name, "range")
        g = self.ok("get", b, "dir/chunk 1+$.bin", out, "--offset", 1000, "--length", 4096)
        self.assertEqual(self.read(out), data[1000:5096])
        self.assertEqual(g["size"], len(data))  # total from Content-Range
        self.assertEqual(g["status"], 206)
        g = self.ok("get", b, "dir/chunk 1+$.bin", out, "--fd")
        self.assertEqual(self.read(out), data)

        hd = self.ok("head", b, "dir/chunk 1+$.bin")
        self.assertEqual(hd["size"], len(data))
        self.assertEqual(hd["storage_class"], "STANDARD")
        self.assertEqual(hd["checksum_crc32"], crc32_b64(data))
        self.assertEqual(hd["meta"], {"tenant": "t1"})
        self.assertFalse(hd["restore_present"])
        missing = self.st("head", b, "nope")
        self.assertEqual(missing["rc"], s3util.ST_ENOTFOUND)
        self.assertEqual(missing["status"], 404)

        self.ok("copy", b, "dir/chunk 1+$.bin", b, "archive/chunk", "--class", "GLACIER")
        self.assertEqual(self.s3.head_object(Bucket=b, Key="archive/chunk")["StorageClass"], "GLACIER")
        self.assertEqual(self.ok("head", b, "archive/chunk")["storage_class"], "GLACIER")
        # in-place class change (the lifecycle move) with a metadata replacement
        self.ok("copy", b, "dir/chunk 1+$.bin", b, "dir/chunk 1+$.bin", "--class", "DEEP_ARCHIVE",
                "--replace-meta", "tier=deep")
        h = self.s3.head_object(Bucket=b, Key="dir/chunk 1+$.bin")
        self.assertEqual(h["StorageClass"], "DEEP_ARCHIVE")
        self.assertEqual(h["Metadata"], {"tier": "deep"})

        arch = self.st("get", b, "archive/chunk", out)
        self.assertEqual(arch["rc"], s3util.ST_S3_EARCHIVED, arch)
        self.assertEqual(arch["code"], "InvalidObjectState")
        self.assertEqual(arch["attempts"], 1)  # not retried
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.s3.get_object(Bucket=b, Key="archive/chunk")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidObjectState")

        r = self.ok("restore", b, "archive/chunk", 2, "Bulk")
        self.assertTrue(r["started"])
        self.assertIn("ongoing-request", self.s3.head_object(Bucket=b, Key="archive/chunk")["Restore"])
        hd = self.ok("head", b, "archive/chunk")
        self.assertTrue(hd["restore_present"])
        self.assertFalse(hd["restore_ongoing"])  # moto completes restores at once
        self.assertGreater(hd["restore_expiry"], time.time())
        self.ok("get", b, "archive/chunk", out)
        self.assertEqual(self.read(out), data)
        self.assertFalse(self.ok("restore", b, "archive/chunk", 3, "Standard")["started"])  # 200: extended

    def test_list_paging_and_batch_delete(self):
        """> 1000 keys: ListObjectsV2 pages with a small max-keys, DeleteObjects in 1000-key batches."""
        b = "list-bucket"
        self.ok("create-bucket", b)
        keys = [f"logs/{i // 100:02d}/k{i:05d}" for i in range(1100)] + ["other/x", "logs/odd key &<>.txt"]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda k: self.s3.put_object(Bucket=b, Key=k, Body=b"x"), keys))
        out = os.path.join(self.tmp.name, "list")
        r = self.ok("list", b, out, "--prefix", "logs/", "--max-keys", 100)
        self.assertTrue(r["first_truncated"])
        self.assertEqual(r["first_n"], 100)
        listed = [line.split("\t")[0] for line in self.read(out).decode().splitlines()]
        want = sorted(k for k in keys if k.startswith("logs/"))
        self.assertEqual(listed, want)
        self.assertGreaterEqual(r["requests"], 12 + 1)  # first page + 12 pages of the full walk
        r = self.ok("list", b, out, "--delimiter", "/")
        prefixes = [line.split("\t")[0] for line in self.read(out).decode().splitlines()]
        self.assertEqual(sorted(prefixes), ["logs/", "other/"])

        kf = self.file("keys", ("\n".join(keys) + "\n").encode())
        r = self.ok("delete-objects", b, kf)
        self.assertEqual(r["deleted"], len(keys))
        self.assertEqual(r["errors"], 0)
        self.assertEqual(self.s3.list_objects_v2(Bucket=b).get("KeyCount", 0), 0)
        self.ok("delete", b, "never-existed")  # 204 for missing keys

    def test_multipart_40mib(self):
        b = "mp-bucket"
        self.ok("create-bucket", b)
        data = os.urandom(40 << 20)
        p = self.file("big", data)
        r = self.ok("put", b, "pack/40m", p, "--fd", "--class", "STANDARD_IA")
        self.assertEqual(r["parts"], 3)  # 16 + 16 + 8 MiB with the defaults
        self.assertTrue(r["crc32_verified"], r)
        self.assertEqual(r["crc32"], zlib.crc32(data))
        h = self.s3.head_object(Bucket=b, Key="pack/40m")
        self.assertEqual(h["ContentLength"], len(data))
        self.assertTrue(h["ETag"].endswith('-3"'), h["ETag"])
        self.assertEqual(h["StorageClass"], "STANDARD_IA")
        parts = [data[i:i + (16 << 20)] for i in range(0, len(data), 16 << 20)]
        want_etag = hashlib.md5(b"".join(hashlib.md5(x).digest() for x in parts)).hexdigest() + "-3"
        self.assertEqual(h["ETag"].strip('"'), want_etag)
        body = self.s3.get_object(Bucket=b, Key="pack/40m")["Body"].read()
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(data).digest())
        # the in-memory path and a smaller part size (5 MiB parts, 8 parts)
        r = self.ok("put", b, "pack/40m-mem", p, STRATA_S3_PART_SIZE=5 << 20, STRATA_S3_THRESHOLD=5 << 20)
        self.assertEqual(r["parts"], 8)
        self.assertEqual(self.s3.head_object(Bucket=b, Key="pack/40m-mem")["ContentLength"], len(data))
        self.assertEqual(self.s3.list_multipart_uploads(Bucket=b).get("Uploads", []), [])
        out = os.path.join(self.tmp.name, "big.out")
        self.ok("get", b, "pack/40m-mem", out, "--fd")
        self.assertEqual(hashlib.sha256(self.read(out)).digest(), hashlib.sha256(data).digest())

    def test_object_lock(self):
        """COMPLIANCE retention refuses deletes of the version; GOVERNANCE yields to the bypass header."""
        b = "lock-bucket"
        self.ok("create-bucket", b, "--lock")
        until = int(time.time()) + 3600
        data = b"audit log chunk"
        r = self.ok("put", b, "sox/chunk", self.file("l", data), "--lock-mode", "COMPLIANCE", "--lock-until", until)
        vid = r["version_id"]
        self.assertTrue(vid)
        # (moto 5.2.1 answers GetObjectRetention with the object body, so HEAD verifies)
        h = self.s3.head_object(Bucket=b, Key="sox/chunk", VersionId=vid)
        self.assertEqual(h["ObjectLockMode"], "COMPLIANCE")
        self.assertEqual(int(h["ObjectLockRetainUntilDate"].timestamp()), until)
        hd = self.ok("head", b, "sox/chunk")
        self.assertEqual((hd["lock_mode"], hd["lock_until"]), ("COMPLIANCE", until))

        d = self.st("delete", b, "sox/chunk", "--version", vid)
        self.assertEqual(d["rc"], s3util.ST_S3_EACCESS, d)
        self.assertEqual(d["code"], "AccessDenied")
        d = self.st("delete", b, "sox/chunk", "--version", vid, "--bypass")
        self.assertEqual(d["rc"], s3util.ST_S3_EACCESS, d)  # no bypass for COMPLIANCE
        r = self.ok("delete-objects", b, self.file("vk", f"sox/chunk\t{vid}\n".encode()))
        self.assertEqual(r["errors"], 1, r)
        self.assertEqual(r["failed"][0]["code"], "AccessDenied")
        self.assertEqual(self.s3.get_object(Bucket=b, Key="sox/chunk", VersionId=vid)["Body"].read(), data)
        # extending is allowed
        self.ok("retention-put", b, "sox/chunk", "COMPLIANCE", until + 86400, "--version", vid)
        self.assertEqual(int(self.s3.head_object(Bucket=b, Key="sox/chunk", VersionId=vid)
                             ["ObjectLockRetainUntilDate"].timestamp()), until + 86400)

        r = self.ok("put", b, "gov/chunk", self.file("g", data), "--lock-mode", "GOVERNANCE", "--lock-until", until)
        self.assertEqual(self.st("delete", b, "gov/chunk", "--version", r["version_id"])["rc"], s3util.ST_S3_EACCESS)
        self.ok("delete", b, "gov/chunk", "--version", r["version_id"], "--bypass")
        with self.assertRaises(botocore.exceptions.ClientError):
            self.s3.head_object(Bucket=b, Key="gov/chunk", VersionId=r["version_id"])
        # GetObjectRetention is checked against the fault server (test_s3_faults.py): moto 5.2.1 answers
        # GET ?retention with the object body.

    def test_presign(self):
        b = "presign-bucket"
        self.ok("create-bucket", b)
        self.s3.put_object(Bucket=b, Key="p/q r.txt", Body=b"presigned body")
        url = self.ok("presign", "GET", b, "p/q r.txt", 300)["url"]
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        self.assertEqual(q["X-Amz-Algorithm"], ["AWS4-HMAC-SHA256"])
        self.assertEqual(q["X-Amz-Expires"], ["300"])
        self.assertEqual(len(q["X-Amz-Signature"][0]), 64)
        self.assertEqual(urllib.request.urlopen(url, timeout=10).read(), b"presigned body")

    def test_credentials_profile_and_web_identity(self):
        b = "creds-bucket"
        self.ok("create-bucket", b)
        cred = self.file("credentials", b"[default]\naws_access_key_id = WRONG\naws_secret_access_key = x\n"
                                        b"# comment\n[strata]\naws_access_key_id = AKIDPROFILE\n"
                                        b"aws_secret_access_key = profilesecret\n")
        env = s3util.base_env(AWS_SHARED_CREDENTIALS_FILE=cred, AWS_PROFILE="strata", STRATA_S3_ENDPOINT=MOTO.url)
        c = s3util.run(env, "creds")
        self.assertEqual((c["rc"], c["source"], c["access_key"]), (0, "profile", "AKIDPROFILE"))
        self.assertTrue(c["has_secret"])
        self.assertNotIn("profilesecret", c["_stderr"] + str(c))
        self.assertEqual(s3util.run(env, "put", b, "from-profile", self.file("x", b"x"))["rc"], 0)

        # EKS IRSA: AssumeRoleWithWebIdentity against moto's STS
        tok = self.file("token", b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c3RyYXRhIn0.c2ln\n")
        env = s3util.base_env(AWS_ROLE_ARN="arn:aws:iam::123456789012:role/strata",
                              AWS_WEB_IDENTITY_TOKEN_FILE=tok, AWS_ROLE_SESSION_NAME="strata-test",
                              AWS_ENDPOINT_URL_STS=MOTO.url, STRATA_S3_ENDPOINT=MOTO.url)
        c = s3util.run(env, "creds")
        self.assertEqual((c["rc"], c["source"]), (0, "web-identity"), c)
        self.assertTrue(c["has_token"])
        self.assertGreater(c["expiration"], time.time())
        self.assertTrue(c["cached_same"])
        self.assertEqual(s3util.run(env, "put", b, "from-irsa", self.file("y", b"y"))["rc"], 0)
        self.assertEqual(self.s3.get_object(Bucket=b, Key="from-irsa")["Body"].read(), b"y")

        # nothing configured: a clear authentication error, no request sent
        c = s3util.run(s3util.base_env(STRATA_S3_ENDPOINT=MOTO.url), "head", b, "from-irsa")
        self.assertEqual((c["rc"], c["code"]), (s3util.ST_S3_EAUTH, "NoCredentials"))


class SignerVsBotocore(unittest.TestCase):
    """Our canonical request, string to sign and signature equal botocore's S3SigV4Auth for the same
    request, time and credentials."""

    WHEN = datetime.datetime(2026, 3, 14, 15, 9, 26)

    def botocore_sign(self, method, url, headers, body, token):
        creds = botocore.credentials.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
        req = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        auth = botocore.auth.S3SigV4Auth(creds, "s3", "eu-central-1")
        seen = {}
        cr, sts = auth.canonical_request, auth.string_to_sign
        auth.canonical_request = lambda r: seen.setdefault("creq", cr(r))
        auth.string_to_sign = lambda r, c: seen.setdefault("sts", sts(r, c))
        orig = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *a, **k: self.WHEN
        try:
            auth.add_auth(req)
        finally:
            botocore.auth.get_current_datetime = orig
        return seen["creq"], seen["sts"], req.headers["Authorization"]

    def ours(self, method, url, headers, body, token):
        u = urllib.parse.urlsplit(url)
        lines = [f"host: {u.netloc}"] + [f"{k}: {v}" for k, v in headers]
        with tempfile.NamedTemporaryFile("w", suffix=".hdr", delete=False) as f:
            f.write("\n".join(lines) + "\n")
            name = f.name
        try:
            env = s3util.base_env(AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
                                  AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  AWS_SESSION_TOKEN=token, STRATA_S3_REGION="eu-central-1",
                                  STRATA_S3_FIXED_TIME=int(self.WHEN.replace(tzinfo=datetime.timezone.utc)
                                                           .timestamp()))
            r = s3util.run(env, "sign", method, u.path, u.query, hashlib.sha256(body or b"").hexdigest(), name)
        finally:
            os.unlink(name)
        self.assertEqual(r["rc"], 0, r)
        return r["canonical_request"], r["string_to_sign"], r["authorization"]

    def test_generated_requests(self):
        if boto3 is None or s3util.selftest_path() is None:
            self.skipTest("needs botocore and strata-s3-selftest")
        q = urllib.parse.quote
        cases = [
            ("GET", "http://127.0.0.1:9000/bucket/" + q("dir/a b+c$.txt"), [("Range", "bytes=0-99")], None, None),
            ("PUT", "http://127.0.0.1:9000/bucket/" + q("k/ünï cödé/~x"),
             [("x-amz-storage-class", "GLACIER"), ("x-amz-meta-tenant", "  t1   a  "),
              ("Content-Type", "application/octet-stream"), ("x-amz-checksum-crc32", "AAAAAA==")],
             b"payload bytes", "SESSIONTOKEN/with+chars=="),
            ("GET", "http://s3.example:9000/logs?list-type=2&prefix=a%2Fb%20c&continuation-token="
             + q("1/ab+c==", safe="") + "&max-keys=100&delimiter=%2F", [], None, None),
            ("POST", "http://127.0.0.1:9000/bucket?delete=", [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
             b"<Delete/>", None),
            ("POST", "http://127.0.0.1:9000/bucket/key?uploadId=" + q("abc/def+=", safe="") + "",
             [("Content-Type", "application/xml")], b"<CompleteMultipartUpload/>", "tok"),
            ("PUT", "http://127.0.0.1:9000/bucket/" + q("x") + "?partNumber=10&uploadId=ZZ", [], b"p" * 1000, None),
            ("DELETE", "http://127.0.0.1:9000/bucket/a%2Fb?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY", [], None,
             None),
            ("PUT", "http://127.0.0.1:9000/bucket/dst", [("x-amz-copy-source", "bucket/src%20key"),
                                                         ("x-amz-metadata-directive", "REPLACE")], None, None),
        ]
        for method, url, headers, body, token in cases:
            with self.subTest(method=method, url=url):
                b_creq, b_sts, b_auth = self.botocore_sign(method, url, headers, body, token)
                o_creq, o_sts, o_auth = self.ours(method, url, headers, body, token)
                self.assertEqual(o_creq, b_creq)
                self.assertEqual(o_sts, b_sts)
                self.assertEqual(o_auth, b_auth)


if __name__ == "__main__":
    unittest.main()
