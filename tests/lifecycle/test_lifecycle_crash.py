"""Lifecycle runs that are killed (SIGKILL at named points inside a run, STRATA_TEST_CRASH_AT) or
that meet a faulty S3 (503 SlowDown, 500, connection resets, answers slower than the timeout, from a
scripted proxy in front of moto_server): the next run completes the work, and the end state is the
same as without trouble: every chunk in exactly one place, no object version, local file or
temporary file left behind, every line queryable exactly once.

Run: python3 -m unittest discover -s tests/lifecycle"""
import os
import time
import unittest

import lcutil
from lcutil import DAY, NS

POLICIES = """    - name: gdpr
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
      delete_after: 30d
    - name: sox
      object_lock: GOVERNANCE
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
        - {class: GLACIER, until: 2557d}
      delete_after: 2557d
    - name: tx
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
        - {class: STANDARD_IA, until: 3650d}
"""
RULES = """    - {selector: '{retention="gdpr"}', policy: gdpr}
    - {selector: '{retention="sox"}', policy: sox}
    - {selector: '{retention="tx"}', policy: tx}
"""
RETS = ("gdpr", "sox", "tx", "none")

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


class Scenario:
    """Data of four streams on day D (h1 and h20 flushed apart) and three lifecycle steps:
    S1 = D+7d+2h uploads the h1 chunks, S2 = D+8d+1h the h20 chunks, S3 = D+31d+1h deletes gdpr,
    repacks sox's two STANDARD objects into one GLACIER object and moves tx's to STANDARD_IA."""

    counter = 0

    def __init__(self, tc, s3_url=None, s3_extra=""):
        Scenario.counter += 1
        self.tc = tc
        self.bucket = "strata-crash-%d-%d" % (os.getpid(), Scenario.counter)
        self.s3 = lcutil.boto("s3", MOTO.url)
        self.s3.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        self.st = lcutil.Strata(lcutil.lifecycle_yaml(s3_url or MOTO.url, self.bucket, POLICIES, RULES,
                                                      s3_extra=s3_extra))
        tc.addCleanup(self.st.cleanup)
        self.st.serve()
        self.D = lcutil.day_start(time.time_ns()) - 3 * DAY
        self.data = {}
        for h in (1, 20):
            for ret in RETS:
                vals = [(self.D + h * 3600 * NS + i * NS, f"{ret} h{h} {i}") for i in range(40)]
                self.st.push([({"app": ret, "retention": ret}, vals)])
                self.data.setdefault(ret, []).extend(vals)
            self.st.flush()
        self.steps = [self.D + 7 * DAY + 2 * 3600 * NS, self.D + 8 * DAY + 3600 * NS, self.D + 31 * DAY + 3600 * NS]

    def run_steps(self, crash_point=None, crash_step=None):
        crashed = False
        for i, now in enumerate(self.steps):
            if crash_point and i == crash_step:
                p = self.st.lifecycle(now, env={"STRATA_TEST_CRASH_AT": crash_point}, expect=None)
                if p.returncode == -9:
                    crashed = True
                else:
                    self.tc.assertEqual(p.returncode, 0, p.stderr)
            self.st.lifecycle(now)
        return crashed

    def check_end_state(self):
        tc, D = self.tc, self.D
        objs = lcutil.list_versions(self.s3, self.bucket)
        by_pol = {}
        for k, vers in objs.items():
            tc.assertEqual(len(vers), 1, f"{k} has {len(vers)} versions: {vers}")
            by_pol.setdefault(k.split("/")[2], []).append(vers[0][1])
        tc.assertEqual({p: sorted(c) for p, c in by_pol.items()},
                       {"sox": ["GLACIER"], "tx": ["STANDARD_IA", "STANDARD_IA"]}, objs)
        sox_key = [k for k in objs if "/sox/" in k][0]
        tc.assertIn("-2-GLACIER.pack", sox_key)
        # every line exactly once where it can be read; nothing of gdpr; sox archived with a warning
        for ret in ("tx", "none"):
            lines, warnings = self.st.lines('{retention="%s"}' % ret, D, D + DAY)
            tc.assertEqual(lines, sorted(self.data[ret]), ret)
            tc.assertEqual(warnings, [])
        lines, _ = self.st.lines('{retention="gdpr"}', D, D + DAY)
        tc.assertEqual(lines, [])
        lines, warnings = self.st.lines('{retention="sox"}', D, D + DAY)
        tc.assertEqual(lines, [])
        tc.assertEqual(len(warnings), 1, warnings)
        tc.assertIn("2 chunks with data from " + lcutil.rfc3339(D + 3600 * NS), warnings[0])
        # the tx objects hold exactly their chunks, checksums intact
        for k in objs:
            if "/tx/" in k:
                _, _, entries = lcutil.parse_pack(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read())
                tc.assertEqual(len(entries), 1)
        # only the unmanaged stream's two chunk files stay local; no temporary files
        tc.assertEqual(len(self.st.local_chunk_files()), 2, self.st.local_chunk_files())
        tc.assertEqual(sorted(os.listdir(os.path.join(self.st.dir, "data", "lifecycle"))), ["lease"])


CRASHES = [
    ("upload-after-intent", 0),
    ("after-put", 0),
    ("upload-after-commit", 0),
    ("todo-before-forget", 0),
    ("upload-after-commit:2", 1),
    ("merge-after-intent", 2),
    ("after-put", 2),
    ("merge-after-commit", 2),
    ("transition-after-copy", 2),
    ("transition-after-commit", 2),
    ("delete-after-s3", 2),
    ("todo-before-forget", 2),
    ("todo-before-forget:3", 2),
]


class CrashTest(unittest.TestCase):
    def test_reference_run(self):
        sc = Scenario(self)
        sc.run_steps()
        sc.check_end_state()

    def test_kill9_at_each_point(self):
        for point, step in CRASHES:
            with self.subTest(point=point, step=step):
                sc = Scenario(self)
                crashed = sc.run_steps(point, step)
                self.assertTrue(crashed, f"{point} was never reached in step {step}")
                sc.check_end_state()
                sc.st.stop()


class FaultTest(unittest.TestCase):
    def test_faulty_s3(self):
        proxy = lcutil.FaultProxy(MOTO.url, slow_s=2.5)
        self.addCleanup(proxy.stop)
        sc = Scenario(self, s3_url=proxy.url, s3_extra="    request_timeout: 1s\n")
        sc.run_steps()
        sc.check_end_state()
        for kind, n in proxy.injected.items():
            self.assertGreater(n, 0, f"no {kind} fault was injected: {proxy.injected}")


if __name__ == "__main__":
    unittest.main()
