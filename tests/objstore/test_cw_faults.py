"""Fault tests of the CloudWatch Logs client (objstore/cwlogs.c) through strata-cw-selftest against the
scripted fake of cwfake.py: ThrottlingException (400), ServiceUnavailableException (503), 500,
OperationAbortedException and connection resets are retried and the batch lands once; an error on
every attempt gives up with ST_S3_EUNAVAILABLE after max attempts; InvalidParameterException and
UnrecognizedClientException are not retried; ResourceNotFoundException creates the group and stream and
sends again; the legacy InvalidSequenceTokenException (resent with the expected token) and
DataAlreadyAcceptedException (success); rejectedLogEventsInfo counts; the request shape (SigV4 scope
"logs", X-Amz-Target, Content-Type); GetLogEvents paging to the repeated forward token.

Run: python3 -m unittest discover -s tests/objstore"""
import json
import os
import subprocess
import time
import unittest

import cwfake
import s3util

ST_S3_EUNAVAILABLE = -10093
ST_S3_EAUTH = -10097
ST_S3_EREMOTE = -10091


class CloudWatchFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exe = cwfake.cw_selftest_path()
        if cls.exe is None:
            raise unittest.SkipTest("strata-cw-selftest not built (set STRATA_CW_SELFTEST)")
        cls.fake = cwfake.FakeLogs()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def run_cw(self, *args, stdin="", attempts=4):
        env = s3util.base_env(AWS_ACCESS_KEY_ID="AKIDFAKE", AWS_SECRET_ACCESS_KEY="secret", AWS_REGION="us-east-1",
                              STRATA_CW_ENDPOINT=self.fake.url, STRATA_CW_MAX_ATTEMPTS=attempts,
                              STRATA_CW_RETRY_BASE_MS=5)
        p = subprocess.run([self.exe, *map(str, args)], input=stdin, env=env, capture_output=True, text=True,
                           timeout=60)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        try:
            res = json.loads(line)
        except ValueError:
            raise AssertionError(f"no JSON from {args}: stdout={p.stdout!r} stderr={p.stderr[-2000:]!r}")
        self.assertEqual(p.returncode == 0, res["rc"] == 0, res)
        return res

    def events_text(self, n=3):
        now = int(time.time() * 1000)
        return "".join(f"{now + i} line {i}\n" for i in range(n)), now

    def setUp(self):
        self.fake.reset()

    def put(self, script, n=3, attempts=4, create=True):
        self.fake.reset(script)
        if create:
            self.fake.groups["/g"] = {"retention": None, "streams": {"s": []}}
        text, now = self.events_text(n)
        return self.run_cw("put", "/g", "s", stdin=text, attempts=attempts), now

    def test_throttling_400_is_retried(self):
        res, _ = self.put([("PutLogEvents", "throttle"), ("PutLogEvents", "throttle")])
        self.assertEqual(res["rc"], 0, res)
        self.assertEqual(res["attempts"], 3)
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 3)
        self.assertEqual([m for _, m in self.fake.events("/g", "s")], ["line 0", "line 1", "line 2"])

    def test_503_500_aborted_and_reset_are_retried(self):
        for action in ("503", "500", "aborted", "reset"):
            with self.subTest(action=action):
                res, _ = self.put([("PutLogEvents", action)])
                self.assertEqual(res["rc"], 0, res)
                self.assertEqual(len(self.fake.events("/g", "s")), 3)

    def test_gives_up_after_max_attempts(self):
        res, _ = self.put([("PutLogEvents", "throttle")] * 10, attempts=3)
        self.assertEqual(res["rc"], ST_S3_EUNAVAILABLE, res)
        self.assertEqual(res["code"], "ThrottlingException")
        self.assertEqual(res["attempts"], 3)
        self.assertEqual(res["status"], 400)
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 3)
        self.assertEqual(self.fake.events("/g", "s"), [])

    def test_not_retried(self):
        res, _ = self.put([("PutLogEvents", "invalid")])
        self.assertEqual(res["rc"], ST_S3_EREMOTE, res)
        self.assertEqual(res["code"], "InvalidParameterException")
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 1)
        res, _ = self.put([("PutLogEvents", "auth")])
        self.assertEqual(res["rc"], ST_S3_EAUTH, res)
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 1)

    def test_missing_group_and_stream_are_created(self):
        res, _ = self.put([], create=False)
        self.assertEqual(res["rc"], 0, res)
        ops = [op for op, _, _ in self.fake.ops()]
        self.assertEqual(ops, ["PutLogEvents", "CreateLogGroup", "CreateLogStream", "PutLogEvents"])
        self.assertEqual(len(self.fake.events("/g", "s")), 3)
        # with --no-create the error is returned
        self.fake.reset()
        text, _ = self.events_text()
        res = self.run_cw("put", "/g2", "s", "--no-create", stdin=text)
        self.assertEqual(res["rc"], -10000, res)

    def test_legacy_sequence_token_errors(self):
        res, _ = self.put([("PutLogEvents", "seqtoken")])
        self.assertEqual(res["rc"], 0, res)
        puts = self.fake.ops("PutLogEvents")
        self.assertEqual(len(puts), 2)
        self.assertNotIn("sequenceToken", puts[0][1])
        self.assertEqual(puts[1][1]["sequenceToken"], "tok-1")
        self.assertEqual(len(self.fake.events("/g", "s")), 3)
        # DataAlreadyAcceptedException: the batch is already there; success, nothing resent
        res, _ = self.put([("PutLogEvents", "already")])
        self.assertEqual(res["rc"], 0, res)
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 1)

    def test_rejected_events_are_counted(self):
        res, _ = self.put([("PutLogEvents", "reject")], n=5)
        self.assertEqual(res["rc"], 0, res)
        self.assertEqual(res["sent"], 5)
        self.assertEqual(res["accepted"], 3)
        self.assertEqual(res["rejected_too_old"], 1)
        self.assertEqual(res["rejected_too_new"], 1)

    def test_request_shape(self):
        res, _ = self.put([])
        self.assertEqual(res["rc"], 0, res)
        op, body, h = self.fake.ops("PutLogEvents")[0]
        hl = {k.lower(): v for k, v in h.items()}
        self.assertEqual(hl["x-amz-target"], "Logs_20140328.PutLogEvents")
        self.assertEqual(hl["content-type"], "application/x-amz-json-1.1")
        auth = hl["authorization"]
        self.assertTrue(auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDFAKE/"), auth)
        self.assertIn("/us-east-1/logs/aws4_request", auth)
        self.assertIn("x-amz-target", auth.split("SignedHeaders=")[1])
        self.assertEqual(body["logGroupName"], "/g")
        self.assertEqual([e["message"] for e in body["logEvents"]], ["line 0", "line 1", "line 2"])

    def test_batches_split_by_the_rules(self):
        # 25 events with at most 10 per batch: 3 requests, in order, none lost
        res, _ = self.put([], n=25)
        self.assertEqual(res["rc"], 0, res)
        self.fake.reset()
        self.fake.groups["/g"] = {"retention": None, "streams": {"s": []}}
        text, _ = self.events_text(25)
        res = self.run_cw("put", "/g", "s", "--max-events", 10, stdin=text)
        self.assertEqual(res["batch_sizes"], [10, 10, 5], res)
        self.assertEqual(len(self.fake.ops("PutLogEvents")), 3)
        self.assertEqual([m for _, m in self.fake.events("/g", "s")], [f"line {i}" for i in range(25)])

    def test_get_pages_until_the_token_repeats(self):
        self.fake.reset()
        now = int(time.time() * 1000)
        self.fake.groups["/g"] = {"retention": None, "streams": {"s": [(now + i, f"e{i}") for i in range(7)]}}
        self.fake.page_size = 3
        res = self.run_cw("get", "/g", "s")
        self.assertEqual(res["rc"], 0, res)
        self.assertEqual([m for _, m in res["events"]], [f"e{i}" for i in range(7)])
        self.assertEqual(len(self.fake.ops("GetLogEvents")), 4)  # 3 + 3 + 1, then the repeated token
        # throttled pages are retried too
        self.fake.requests = []
        self.fake.script = [("GetLogEvents", "throttle")]
        res = self.run_cw("get", "/g", "s", "--start", now + 5)
        self.assertEqual([m for _, m in res["events"]], ["e5", "e6"])


if __name__ == "__main__":
    unittest.main()
