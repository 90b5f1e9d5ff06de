"""The lifecycle against moto_server: a full run with --now stepping through seven years (upload to
S3 Standard, repack into Glacier, Deep Archive, deletion), checked with boto3 at each step; queries
across tiers; restore; Object Lock; dry run; the lease; the hot tier's size limit.

Run: python3 -m unittest discover -s tests/lifecycle"""
import json
import os
import re
import subprocess
import time
import unittest
import urllib.parse

import lcutil
from lcutil import DAY, NS

BUCKET = "strata-lc"

POLICIES = """    - name: gdpr
      erasable: true
      legal_basis: "GDPR Art. 5(1)(e): storage limitation"
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
      delete_after: 30d
    - name: sox
      immutable: true
      object_lock: GOVERNANCE
      legal_basis: "SOX s.802: seven years"
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
        - {class: GLACIER, until: 365d}
        - {class: DEEP_ARCHIVE, until: 2557d}
      delete_after: 2557d
    - name: cold
      tiers:
        - {class: hot, until: 7d}
        - {class: DEEP_ARCHIVE, until: 200d}
      delete_after: 200d
"""
RULES = """    - {selector: '{retention="gdpr"}', policy: gdpr}
    - {selector: '{retention="sox"}', policy: sox}
    - {selector: '{retention="cold"}', policy: cold}
"""

MOTO = None


def setUpModule():
    global MOTO
    if not lcutil.have_moto():
        raise unittest.SkipTest("moto_server/boto3 not installed (scripts/test.sh installs them)")
    MOTO = lcutil.s3util.Moto()
    MOTO.start()


def tearDownModule():
    if MOTO:
        MOTO.stop()


def make_bucket(name, lock=True):
    s3 = lcutil.boto("s3", MOTO.url)
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
    if not lock:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return s3


def streams_for(day0, labels, tag, hours=(1, 20), n=50):
    """Lines of one stream at day0 + each hour; returns [(labels, values)] and the set of lines."""
    out = []
    for h in hours:
        base = day0 + h * 3600 * NS
        out.append((labels, [(base + i * NS, f"{tag} h{h} line {i}") for i in range(n)]))
    return out


class YearTest(unittest.TestCase):
    """One data set through every step of its policies."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = make_bucket(BUCKET)
        cls.st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, BUCKET, POLICIES, RULES))
        cls.st.serve()
        now = time.time_ns()
        cls.D = lcutil.day_start(now) - 3 * DAY
        cls.data = {}
        for ret in ("gdpr", "sox", "cold", "none"):
            labels = {"app": "a-" + ret, "retention": ret}
            # the two hours are pushed and flushed apart, so they become separate chunks
            for h in (1, 20):
                s = streams_for(cls.D, labels, ret, hours=(h,))
                cls.st.push(s)
                cls.data.setdefault(ret, []).extend(v for _, vals in s for v in vals)
                cls.st.flush()

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()

    def objects(self):
        return lcutil.list_versions(self.s3, BUCKET)

    def q(self, ret):
        lines, warnings = self.st.lines('{retention="%s"}' % ret, self.D, self.D + DAY)
        return lines, warnings

    def assert_all(self, ret):
        lines, warnings = self.q(ret)
        self.assertEqual(lines, sorted(self.data[ret]), ret)
        self.assertEqual(warnings, [], ret)

    def test_year(self):
        st, D = self.st, self.D
        for ret in ("gdpr", "sox", "cold", "none"):
            self.assert_all(ret)
        self.assertEqual(len(st.local_chunk_files()), 8)

        # nothing due yet
        p = st.lifecycle(D + 6 * DAY)
        self.assertEqual(self.objects(), {})

        # a dry run at +7d+2h plans the h1 uploads and changes nothing
        p = st.lifecycle(D + 7 * DAY + 2 * 3600 * NS, "--dry-run")
        self.assertIn("upload", p.stdout)
        self.assertRegex(p.stdout, r"upload \d+ chunks")
        self.assertEqual(self.objects(), {})

        # +7d+2h: the h1 chunks of gdpr and sox are 7 days old -> STANDARD; h20 stays hot; cold waits
        # for its whole day (Deep Archive packs hold whole days)
        st.lifecycle(D + 7 * DAY + 2 * 3600 * NS)
        objs = self.objects()
        self.assertEqual(sorted(k.split("/")[2] for k in objs), ["gdpr", "sox"], objs)
        for k, vers in objs.items():
            self.assertEqual([(c, latest) for _, c, latest in vers], [("STANDARD", True)], k)
            body = self.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read()
            tenant, policy, entries = lcutil.parse_pack(body)
            self.assertEqual(tenant, "fake")
            self.assertEqual(policy, k.split("/")[2])
            self.assertEqual(len(entries), 1)
        sox_key = [k for k in objs if "/sox/" in k][0]
        head = self.s3.head_object(Bucket=BUCKET, Key=sox_key)
        self.assertEqual(head["ObjectLockMode"], "GOVERNANCE")
        want_until = (D + 1 * 3600 * NS + 49 * NS + 2557 * DAY) // NS
        self.assertEqual(int(head["ObjectLockRetainUntilDate"].timestamp()), want_until)
        # queries read S3 transparently
        for ret in ("gdpr", "sox", "cold", "none"):
            self.assert_all(ret)

        # +8d+1h: the rest moves; cold's whole day is due -> one DEEP_ARCHIVE pack with both chunks
        st.lifecycle(D + 8 * DAY + 3600 * NS)
        objs = self.objects()
        per = {}
        for k, vers in objs.items():
            per.setdefault(k.split("/")[2], []).append(vers[0][1])
        self.assertEqual(sorted(per["gdpr"]), ["STANDARD", "STANDARD"])
        self.assertEqual(sorted(per["sox"]), ["STANDARD", "STANDARD"])
        self.assertEqual(per["cold"], ["DEEP_ARCHIVE"])
        cold_key = [k for k in objs if "/cold/" in k][0]
        self.assertIn("-2-DEEP_ARCHIVE.pack", cold_key)
        # the local files of moved chunks are gone; the unmanaged stream stays hot
        self.assertEqual(len(st.local_chunk_files()), 2)
        for ret in ("gdpr", "sox", "none"):
            self.assert_all(ret)
        lines, warnings = self.q("cold")
        self.assertEqual(lines, [])
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("archived", warnings[0])
        self.assertIn(lcutil.rfc3339(D + 3600 * NS)[:10], warnings[0])

        # +31d+1h: gdpr deleted everywhere; sox's two STANDARD objects repacked into one GLACIER object
        st.lifecycle(D + 31 * DAY + 3600 * NS)
        objs = self.objects()
        self.assertFalse([k for k in objs if "/gdpr/" in k], objs)
        sox = [k for k in objs if "/sox/" in k]
        self.assertEqual(len(sox), 1, objs)
        self.assertIn("-2-GLACIER.pack", sox[0])
        self.assertEqual([c for _, c, _ in objs[sox[0]]], ["GLACIER"])
        head = self.s3.head_object(Bucket=BUCKET, Key=sox[0])
        self.assertEqual(head["ObjectLockMode"], "GOVERNANCE")
        lines, _ = self.q("gdpr")
        self.assertEqual(lines, [])
        # an archived object cannot be read until restored
        with self.assertRaises(Exception) as cm:
            self.s3.get_object(Bucket=BUCKET, Key=sox[0])
        self.assertIn("InvalidObjectState", str(cm.exception))
        lines, warnings = self.q("sox")
        self.assertEqual(lines, [])
        self.assertTrue(warnings and "archived" in warnings[0], warnings)

        # Object Lock refuses an early delete of the archived data
        vid = objs[sox[0]][0][0]
        with self.assertRaises(Exception) as cm:
            self.s3.delete_object(Bucket=BUCKET, Key=sox[0], VersionId=vid)
        self.assertIn("AccessDenied", str(cm.exception))

        # restore through the API: then the query answers again
        params = urllib.parse.urlencode({"query": '{retention="sox"}', "start": str(D), "end": str(D + DAY),
                                         "tier": "Bulk", "days": "2"})
        st_code, body = st.request("POST", "/strata/api/v1/restore?" + params)
        self.assertEqual(st_code, 202, body)
        res = json.loads(body)
        self.assertEqual(res["objects"], 1, res)
        for _ in range(50):
            st_code, body = st.request("GET", "/strata/api/v1/restore")
            self.assertEqual(st_code, 200, body)
            status = json.loads(body)
            if status[0]["status"] == "done":
                break
            time.sleep(0.2)
        self.assertEqual(status[0]["status"], "done", status)
        self.assertEqual(status[0]["objects"], [{"key": sox[0], "state": "restored"}])
        self.assert_all("sox")

        # +366d: sox to Deep Archive (its restored copy makes the copy possible right away)
        st.lifecycle(D + 366 * DAY)
        objs = self.objects()
        sox = [k for k in objs if "/sox/" in k]
        self.assertEqual(len(sox), 1)
        self.assertEqual([c for _, c, _ in objs[sox[0]]], ["DEEP_ARCHIVE"])
        head = self.s3.head_object(Bucket=BUCKET, Key=sox[0])
        self.assertEqual(int(head["ObjectLockRetainUntilDate"].timestamp()), (D + 20 * 3600 * NS + 49 * NS + 2557 * DAY) // NS)

        # +201d: cold deleted from Deep Archive (no lock)
        st.lifecycle(D + 201 * DAY)
        self.assertFalse([k for k in self.objects() if "/cold/" in k])

        # +2558d: sox is due, but Object Lock (moto's clock is today's) refuses: reported, exit 1
        p = st.lifecycle(D + 2558 * DAY, expect=1)
        self.assertIn("Object Lock", p.stderr)
        self.assertTrue([k for k in self.objects() if "/sox/" in k])

        # the unmanaged stream never moved and is whole
        self.assert_all("none")
        self.assertEqual(len(st.local_chunk_files()), 2)


class LockedDeletionTest(unittest.TestCase):
    """Deletion at the end of retention of an Object-Locked object, on a real clock: refused before
    the retain-until date, done after it."""

    def test_locked_delete(self):
        bucket = "strata-lock-short"
        s3 = make_bucket(bucket)
        pol = """    - name: short
      object_lock: GOVERNANCE
      allow_early_delete: true
      tiers:
        - {class: STANDARD, until: 12s}
      delete_after: 12s
"""
        st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, bucket, pol, "    []\n",
                                                 extra="  default_policy: short\n"))
        try:
            st.serve()
            t = time.time_ns() - NS
            st.push([({"app": "x"}, [(t, "short-lived")])])
            st.flush()
            st.lifecycle()
            objs = lcutil.list_versions(s3, bucket)
            self.assertEqual(len(objs), 1)
            key = next(iter(objs))
            vid = objs[key][0][0]
            with self.assertRaises(Exception) as cm:
                s3.delete_object(Bucket=bucket, Key=key, VersionId=vid)
            self.assertIn("AccessDenied", str(cm.exception))
            while time.time_ns() < t + 13 * NS:
                time.sleep(0.5)
            st.lifecycle()
            self.assertEqual(lcutil.list_versions(s3, bucket), {})
            lines, _ = st.lines("{app=\"x\"}", t - NS, t + NS)
            self.assertEqual(lines, [])
        finally:
            st.cleanup()


class SmallTests(unittest.TestCase):
    def setUp(self):
        self.bucket = "strata-small-%d" % (time.time_ns() % 10**9)
        self.s3 = make_bucket(self.bucket, lock=False)

    def strata(self, extra="", pol=None, enabled=False):
        pol = pol or """    - name: p
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 3650d}
"""
        st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, self.bucket, pol, "    []\n",
                                                 extra=extra + "  default_policy: p\n", enabled=enabled))
        self.addCleanup(st.cleanup)
        return st

    def test_hot_max_bytes_moves_oldest_first(self):
        st = self.strata(extra="  hot_max_bytes: 1\n")
        st.serve()
        now = time.time_ns()
        for i, age in enumerate((3, 2, 1)):
            st.push([({"app": "s%d" % i}, [(now - age * DAY + k * NS, "line %d %d" % (i, k)) for k in range(100)])])
            st.flush()
        # with a limit of 1 byte every chunk goes, oldest first; with the limit above the
        # newest chunk, only it stays: check the first by listing what moved
        p = st.lifecycle()
        self.assertIn("moving the 3 oldest chunks early", p.stderr)
        self.assertEqual(len(lcutil.list_versions(self.s3, self.bucket)), 3)
        self.assertEqual(st.local_chunk_files(), [])

    def test_dry_run_changes_nothing(self):
        st = self.strata()
        st.serve()
        old = time.time_ns() - 8 * DAY
        st.push([({"app": "x"}, [(old + i, "l%d" % i) for i in range(10)])])
        st.flush()
        files = st.local_chunk_files()
        p = st.lifecycle(None, "--dry-run")
        self.assertIn("upload", p.stdout)
        self.assertIn("cost: $", p.stdout)
        self.assertEqual(lcutil.list_versions(self.s3, self.bucket), {})
        self.assertEqual(st.local_chunk_files(), files)

    def test_dry_run_cost_uses_configured_prices(self):
        # lifecycle.prices (the report's price table) prices the plan too: one upload at $2 per
        # 1,000 requests, and the chunk's bytes at $1000 per GB-month in STANDARD
        st = self.strata(extra="  prices:\n    storage_gb_month: {STANDARD: 1000}\n    requests_per_1000: {STANDARD: 2}\n")
        st.serve()
        old = time.time_ns() - 8 * DAY
        st.push([({"app": "x"}, [(old + i, "l%d" % i) for i in range(10)])])
        st.flush()
        p = st.lifecycle(None, "--dry-run")
        m = re.search(r"plan: 1 chunks \((\d+) bytes\)", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        monthly = int(m.group(1)) / 2**30 * 1000
        self.assertIn("cost: $%.4f one-time (requests), $%.4f per month" % (0.002, monthly), p.stdout)

    def test_lease(self):
        import fcntl
        st = self.strata()
        os.makedirs(os.path.join(st.dir, "data", "lifecycle"), exist_ok=True)
        with open(os.path.join(st.dir, "data", "lifecycle", "lease"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            p = st.lifecycle(expect=3)
            self.assertIn("another run holds the lease", p.stderr)
        st.lifecycle()

    def test_metrics(self):
        # the in-server worker, enabled with a short interval
        st = self.strata(enabled=True)
        st.serve()
        old = time.time_ns() - 8 * DAY
        st.push([({"app": "m"}, [(old + i, "m%d" % i) for i in range(10)])])
        st.flush()
        deadline = time.time() + 30
        while time.time() < deadline:
            if lcutil.list_versions(self.s3, self.bucket):
                break
            time.sleep(0.3)
        self.assertEqual(len(lcutil.list_versions(self.s3, self.bucket)), 1)
        _, m = st.request("GET", "/metrics")
        m = m.decode()
        self.assertIn('strata_lifecycle_objects_written_total{tier="STANDARD"} 1', m)
        self.assertIn("strata_lifecycle_last_success_timestamp_seconds", m)
        lines, _ = st.lines('{app="m"}', old, old + NS)
        self.assertEqual(len(lines), 10)

    def test_check_config_rejects_bad_policies(self):
        bad = """    - name: bad
      tiers:
        - {class: GLACIER, until: 10d}
        - {class: STANDARD, until: 20d}
      delete_after: 5d
"""
        st = self.strata(pol=bad)
        p = st.run("check-config")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("strata.yaml:", p.stderr)
        self.assertIn("lifecycle.policies", p.stderr)


class ExampleConfigTest(unittest.TestCase):
    """config/examples/lifecycle-s3.yaml works as documented: ${VAR} expansion, gdpr and sox."""

    def test_example(self):
        bucket = "strata-example"
        s3 = make_bucket(bucket)
        example = os.path.join(lcutil.REPO, "config", "examples", "lifecycle-s3.yaml")
        st = lcutil.Strata(cfg_file=example, args=["-config.expand-env=true", "-server.http_listen_address=127.0.0.1"],
                           env={"S3_ENDPOINT": MOTO.url, "S3_BUCKET": bucket, "AWS_REGION": "us-east-1"})
        st.args.append(f"-server.http_listen_port={st.port}")
        st.extra_env["STRATA_DATA"] = os.path.join(st.dir, "data")
        self.addCleanup(st.cleanup)
        p = st.run("check-config")
        self.assertEqual(p.returncode, 0, p.stderr)
        st.serve()
        D = lcutil.day_start(time.time_ns()) - 2 * DAY
        st.push([({"app": "web", "retention": "gdpr"}, [(D + i * NS, "gdpr %d" % i) for i in range(20)]),
                 ({"app": "ledger", "retention": "sox"}, [(D + i * NS, "sox %d" % i) for i in range(20)])])
        st.flush()
        st.stop()  # the in-server worker would run too; the CLI is what cron runs
        st.lifecycle(D + 8 * DAY + 3600 * NS)
        objs = lcutil.list_versions(s3, bucket)
        self.assertEqual(sorted(k.split("/")[2] for k in objs), ["gdpr", "sox"])
        sox = [k for k in objs if "/sox/" in k][0]
        head = s3.head_object(Bucket=bucket, Key=sox)
        self.assertEqual(head["ObjectLockMode"], "GOVERNANCE")  # COMPLIANCE only in the last tier
        st.lifecycle(D + 31 * DAY + 3600 * NS)
        objs = lcutil.list_versions(s3, bucket)
        self.assertEqual([k.split("/")[2] for k in objs], ["sox"])
        self.assertEqual(objs[sox if sox in objs else next(iter(objs))][0][1], "GLACIER")
        st.lifecycle(D + 366 * DAY)   # restore (bulk) requested: GLACIER -> DEEP_ARCHIVE needs it
        st.lifecycle(D + 367 * DAY)
        objs = lcutil.list_versions(s3, bucket)
        key = next(iter(objs))
        self.assertEqual(objs[key][0][1], "DEEP_ARCHIVE")
        head = s3.head_object(Bucket=bucket, Key=key)
        self.assertEqual(head["ObjectLockMode"], "COMPLIANCE")
        self.assertEqual(int(head["ObjectLockRetainUntilDate"].timestamp()), (D + 19 * NS + 2557 * DAY) // NS)


if __name__ == "__main__":
    unittest.main()
