"""Loki's delete API (/loki/api/v1/delete) against the real strata binary: parameters and error texts,
selector-only and line-filter requests (the lines vanish from queries at once and are removed from
storage by the lifecycle run, on local disk, in S3 Standard and in Glacier after a restore), dry run,
cancellation, refusal under Object Lock, durability across kill -9, and kill -9 inside the rewrite.

Run: python3 -m unittest discover -s tests/lifecycle"""
import json
import os
import time
import unittest
import urllib.parse

import lcutil
from lcutil import DAY, NS

HOUR = 3600 * NS
MOTO = None


def setUpModule():
    global MOTO
    if lcutil.have_moto():
        MOTO = lcutil.s3util.Moto()
        MOTO.start()


def tearDownModule():
    if MOTO:
        MOTO.stop()


def q(params):
    return "/loki/api/v1/delete?" + urllib.parse.urlencode(params)


class DeleteBase(unittest.TestCase):
    extra = "compactor:\n  delete_request_cancel_period: 0s\n"

    def strata(self, lifecycle="", extra=None):
        st = lcutil.Strata(lifecycle, extra_yaml=extra if extra is not None else self.extra)
        self.addCleanup(st.cleanup)
        st.serve()
        return st

    def add(self, st, query, start_ns, end_ns, **kw):
        params = {"query": query, "start": lcutil.rfc3339(start_ns), "end": lcutil.rfc3339(end_ns)}
        params.update(kw)
        code, body = st.request("POST", q(params))
        return code, body

    def requests(self, st):
        code, body = st.request("GET", "/loki/api/v1/delete")
        self.assertEqual(code, 200, body)
        return json.loads(body)

    def process(self, st, **kw):
        # due once the cancel period and the ingester's max_chunk_age (2h) have passed
        return st.lifecycle(time.time_ns() + 3 * HOUR, **kw)


class ApiTest(DeleteBase):
    def test_errors_and_shapes(self):
        st = self.strata()
        now = time.time_ns()
        cases = [
            ({}, 400, "query not set"),
            ({"query": '{app="a"} | json', "start": "1700000000"}, 400, "invalid query expression"),
            ({"query": "sum(rate({app=\"a\"}[1m]))", "start": "1700000000"}, 400, "invalid query expression"),
            ({"query": '{app="a"}'}, 400, "start time not set"),
            ({"query": '{app="a"}', "start": "17000000000"}, 400,
             "invalid start time: require unix seconds or RFC3339 format"),
            ({"query": '{app="a"}', "start": "1700000000", "end": "x"}, 400,
             "invalid end time: require unix seconds or RFC3339 format"),
            ({"query": '{app="a"}', "start": "1700000000", "end": str(now // NS + 3600)}, 400,
             "deletes in the future are not allowed"),
            ({"query": '{app="a"}', "start": "1700000100", "end": "1700000000"}, 400,
             "start time can't be greater than end time"),
            ({"query": '{app="a"} |= "x"', "start": "1700000000", "end": "1700003600", "max_interval": "10ms"}, 400,
             "invalid max_interval: valid time units are 's', 'm', 'h'"),
            ({"query": '{app="a"} |= "x"', "start": "1700000000", "end": "1700003600", "max_interval": "48h"}, 400,
             "max_interval can't be greater than 24h0m0s"),
            ({"query": '{app="a"} |= "x"', "start": "1700000000", "end": "1700003600", "max_interval": "2h"}, 400,
             "max_interval can't be greater than the interval to be deleted (1h0m0s)"),
            ({"query": '{app="a"} |= "x"', "start": "1700000000", "end": "1700000000"}, 400,
             "difference between start time and end time must be at least one second"),
        ]
        for params, code, text in cases:
            with self.subTest(params=params):
                c, body = st.request("POST", q(params))
                self.assertEqual((c, body.decode()), (code, text + "\n"))
        c, body = st.request("DELETE", q({"request_id": "nope"}))
        self.assertEqual((c, body.decode()), (404, "could not find delete request with given id\n"))
        self.assertEqual(self.requests(st), [])
        c, body = st.request("PATCH", "/loki/api/v1/delete")
        self.assertEqual(c, 405)

        # a valid request: 204, X-Delete-Request-ID, listed as Loki lists it
        import urllib.request
        req = urllib.request.Request(st.url + q({"query": '{app="a"}', "start": "1700000000",
                                                 "end": "2023-11-14T22:15:00.250Z"}),
                                     method="POST")
        with urllib.request.urlopen(req) as r:
            self.assertEqual(r.status, 204)
            rid = r.headers["X-Delete-Request-ID"]
        self.assertRegex(rid, r"^[0-9a-f]{8}$")
        lst = self.requests(st)
        self.assertEqual(len(lst), 1)
        e = lst[0]
        self.assertEqual({k: e[k] for k in ("request_id", "start_time", "end_time", "query", "status")},
                         {"request_id": rid, "start_time": 1700000000, "end_time": 1700000100.25,
                          "query": '{app="a"}', "status": "received"})
        self.assertAlmostEqual(e["created_at"], time.time(), delta=60)
        # PUT adds too; cancel works while received
        c, _ = st.request("PUT", q({"query": '{app="b"}', "start": "1700000000", "end": "1700000001"}))
        self.assertEqual(c, 204)
        self.assertEqual(len(self.requests(st)), 2)
        c, _ = st.request("DELETE", q({"request_id": rid}))
        self.assertEqual(c, 204)
        self.assertEqual([x["query"] for x in self.requests(st)], ['{app="b"}'])
        # tenants are separate
        c, body = st.request("GET", "/loki/api/v1/delete", tenant=None, headers={"X-Scope-OrgID": "other"})
        self.assertEqual(c, 200)

    def test_disabled(self):
        st = self.strata()
        st.stop()
        with open(st.cfg) as f:
            cfg = f.read()
        with open(st.cfg, "w") as f:
            f.write(cfg.replace("limits_config:\n", "limits_config:\n  deletion_mode: disabled\n"))
        st.serve()
        c, body = st.request("POST", q({"query": '{app="a"}', "start": "1700000000"}))
        self.assertEqual((c, body.decode()), (403, "deletion is not available for this tenant\n"))


class HotDeleteTest(DeleteBase):
    def push_data(self, st, t0):
        st.push([({"app": "a"}, [(t0 + i * NS, "a line %d%s" % (i, " secret" if i % 3 == 0 else "")) for i in range(100)]),
                 ({"app": "b"}, [(t0 + i * NS, "b line %d%s" % (i, " secret" if i % 3 == 0 else "")) for i in range(100)])])
        st.flush()

    def test_selector_and_line_filter(self):
        st = self.strata()
        t0 = (time.time_ns() - HOUR) // NS * NS  # whole seconds: the API takes RFC3339 seconds
        self.push_data(st, t0)
        before_a, _ = st.lines('{app="a"}', t0, t0 + 200 * NS)
        self.assertEqual(len(before_a), 100)
        # selector only, seconds 10..19 of app=a
        c, body = self.add(st, '{app="a"}', t0 + 10 * NS, t0 + 19 * NS)
        self.assertEqual(c, 204, body)
        # line filter, all of app=b
        c, body = self.add(st, '{app="b"} |= "secret"', t0 - NS, t0 + 200 * NS)
        self.assertEqual(c, 204, body)

        def check():
            a, _ = st.lines('{app="a"}', t0, t0 + 200 * NS)
            self.assertEqual([l for _, l in a], ["a line %d%s" % (i, " secret" if i % 3 == 0 else "")
                                                 for i in range(100) if not 10 <= i <= 19])
            b, _ = st.lines('{app="b"}', t0, t0 + 200 * NS)
            self.assertEqual([l for _, l in b], ["b line %d" % i for i in range(100) if i % 3 != 0])
            # metric queries agree
            st_code, res = st.query_range('sum(count_over_time({app=~"a|b"}[1h]))', t0 + 200 * NS, t0 + 200 * NS)
            self.assertEqual(st_code, 200, res)
            self.assertEqual(res["data"]["result"][0]["values"][0][1], str(90 + 66))

        check()  # hidden at once, before any processing
        self.assertEqual({x["status"] for x in self.requests(st)}, {"received"})
        p = self.process(st)
        self.assertIn("processed", p.stderr)
        lst = self.requests(st)
        self.assertEqual({x["status"] for x in lst}, {"processed"})
        self.assertEqual(sorted(x["deleted_lines"] for x in lst), [10, 34])
        check()  # gone from storage: the requests no longer filter anything
        files = st.local_chunk_files()
        self.assertTrue(any(".d" in os.path.basename(f) for f in files), files)
        # a restart reads the rewritten chunks
        st.stop()
        st.serve()
        check()
        # processed requests cannot be cancelled
        rid = lst[0]["request_id"]
        c, body = st.request("DELETE", q({"request_id": rid}))
        self.assertEqual((c, body.decode()),
                         (400, "deletion of request which is in process or already processed is not allowed\n"))

    def test_whole_chunk_and_dry_run(self):
        st = self.strata()
        t0 = (time.time_ns() - HOUR) // NS * NS  # whole seconds: the API takes RFC3339 seconds
        self.push_data(st, t0)
        c, body = self.add(st, '{app="a"}', t0 - NS, t0 + 200 * NS, dry_run="true")
        self.assertEqual(c, 200, body)
        prev = json.loads(body)
        self.assertEqual((prev["streams"], prev["chunks"], prev["chunks_local"], prev["refused"]), (1, 1, 1, None))
        self.assertEqual(self.requests(st), [])
        c, body = self.add(st, '{app="a"}', t0 - NS, t0 + 200 * NS)
        self.assertEqual(c, 204)
        self.process(st)
        a, _ = st.lines('{app="a"}', t0, t0 + 200 * NS)
        self.assertEqual(a, [])
        b, _ = st.lines('{app="b"}', t0, t0 + 200 * NS)
        self.assertEqual(len(b), 100)
        # the chunk is gone from the index, not just hidden
        c, body = self.add(st, '{app="a"}', t0 - NS, t0 + 200 * NS, dry_run="true")
        self.assertEqual(json.loads(body)["chunks"], 0)
        code, body = st.request("GET", "/loki/api/v1/labels?" + urllib.parse.urlencode(
            {"start": str(t0), "end": str(t0 + 200 * NS)}))
        self.assertEqual(code, 200)

    def test_request_survives_kill9(self):
        st = self.strata()
        t0 = (time.time_ns() - HOUR) // NS * NS  # whole seconds: the API takes RFC3339 seconds
        self.push_data(st, t0)
        c, _ = self.add(st, '{app="a"} |= "secret"', t0 - NS, t0 + 200 * NS)
        self.assertEqual(c, 204)
        st.stop(kill=True)
        st.serve()
        self.assertEqual(len(self.requests(st)), 1)
        a, _ = st.lines('{app="a"}', t0, t0 + 200 * NS)
        self.assertEqual(len(a), 66)

    def test_kill9_inside_rewrite(self):
        st = self.strata()
        t0 = (time.time_ns() - HOUR) // NS * NS  # whole seconds: the API takes RFC3339 seconds
        self.push_data(st, t0)
        c, _ = self.add(st, '{app=~"a|b"} |= "secret"', t0 - NS, t0 + 200 * NS)
        self.assertEqual(c, 204)
        p = st.lifecycle(time.time_ns() + 3 * HOUR, env={"STRATA_TEST_CRASH_AT": "erase-after-write"}, expect=None)
        self.assertEqual(p.returncode, -9, p.stderr)
        self.process(st)
        self.assertEqual(self.requests(st)[0]["status"], "processed")
        for app in ("a", "b"):
            lines, _ = st.lines('{app="%s"}' % app, t0, t0 + 200 * NS)
            self.assertEqual(len(lines), 66, app)
        # the file written before the crash was reused or removed: one file per stream
        self.assertEqual(len(st.local_chunk_files()), 2, st.local_chunk_files())


@unittest.skipIf(not lcutil.have_moto(), "moto_server/boto3 not installed")
class S3DeleteTest(DeleteBase):
    POL = """    - name: std
      tiers:
        - {class: hot, until: 1d}
        - {class: STANDARD, until: 30d}
        - {class: GLACIER, until: 3650d}
      delete_after: 3650d
    - name: locked
      object_lock: GOVERNANCE
      tiers:
        - {class: hot, until: 1d}
        - {class: STANDARD, until: 3650d}
      delete_after: 3650d
"""
    RULES = """    - {selector: '{retention="locked"}', policy: locked}
"""

    def setUp(self):
        self.bucket = "strata-del-%d" % (time.time_ns() % 10**9)
        self.s3 = lcutil.boto("s3", MOTO.url)
        self.s3.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        self.st = self.strata(lcutil.lifecycle_yaml(MOTO.url, self.bucket, self.POL, self.RULES,
                                                    extra="  default_policy: std\n"))
        self.D = lcutil.day_start(time.time_ns()) - 3 * DAY
        self.st.push([({"app": "s"}, [(self.D + HOUR + i * NS, "s %d%s" % (i, " pii" if i % 2 else ""))
                                     for i in range(50)]),
                      ({"app": "k", "retention": "locked"}, [(self.D + HOUR + i * NS, "k %d pii" % i) for i in range(5)])])
        self.st.flush()
        self.st.lifecycle(time.time_ns())  # both uploaded to STANDARD (older than 1d)
        self.assertEqual(len(lcutil.list_versions(self.s3, self.bucket)), 2)

    def test_standard_object_rewritten(self):
        st, D = self.st, self.D
        c, body = self.add(st, '{app="s"} |= "pii"', D, D + DAY)
        self.assertEqual(c, 204, body)
        lines, _ = st.lines('{app="s"}', D, D + DAY)
        self.assertEqual(len(lines), 25)
        self.process(st)
        self.assertEqual(self.requests(st)[0]["status"], "processed")
        objs = lcutil.list_versions(self.s3, self.bucket)
        s_keys = [k for k in objs if "/std/" in k]
        self.assertEqual(len(s_keys), 1, objs)
        self.assertIn("-e", s_keys[0])
        self.assertEqual(len(objs[s_keys[0]]), 1)
        body = self.s3.get_object(Bucket=self.bucket, Key=s_keys[0])["Body"].read()
        self.assertNotIn(b"pii", body.replace(b"\x00", b""))  # compressed, but zstd keeps short literals
        lines, _ = st.lines('{app="s"}', D, D + DAY)
        self.assertEqual([l for _, l in lines], ["s %d" % i for i in range(0, 50, 2)])

    def test_kill9_after_object_written(self):
        st, D = self.st, self.D
        c, _ = self.add(st, '{app="s"} |= "pii"', D, D + DAY)
        self.assertEqual(c, 204)
        p = st.lifecycle(time.time_ns() + 3 * HOUR, env={"STRATA_TEST_CRASH_AT": "erase-after-put"}, expect=None)
        self.assertEqual(p.returncode, -9, p.stderr)
        self.assertEqual(len(lcutil.list_versions(self.s3, self.bucket)), 3)  # the new object, not yet indexed
        self.process(st)
        objs = lcutil.list_versions(self.s3, self.bucket)
        self.assertEqual(sorted(len(v) for v in objs.values()), [1, 1], objs)
        self.assertEqual(self.requests(st)[0]["status"], "processed")
        lines, _ = st.lines('{app="s"}', D, D + DAY)
        self.assertEqual(len(lines), 25)

    def test_locked_stream_refused(self):
        c, body = self.add(self.st, '{retention="locked"}', self.D, self.D + DAY)
        self.assertEqual(c, 400)
        self.assertIn("deletion refused", body.decode())
        self.assertIn("Object Lock (GOVERNANCE)", body.decode())
        self.assertEqual(self.requests(self.st), [])

    def test_glacier_object_restored_then_rewritten(self):
        st, D = self.st, self.D
        st.lifecycle(D + 31 * DAY + HOUR)  # std -> GLACIER
        objs = lcutil.list_versions(self.s3, self.bucket)
        self.assertEqual(sorted(v[0][1] for v in objs.values()), ["GLACIER", "STANDARD"])
        c, body = self.add(st, '{app="s"} |= "pii"', D, D + DAY)
        self.assertEqual(c, 204, body)
        p = self.process(st)
        self.assertIn("restore (bulk)", p.stderr)
        lst = self.requests(st)
        self.assertEqual(lst[0]["status"], "received")  # nothing done yet: waiting for the restore
        self.assertIn("waiting for the restore", lst[0]["message"])
        self.process(st)
        lst = self.requests(st)
        self.assertEqual(lst[0]["status"], "processed", lst)
        self.assertEqual(lst[0]["deleted_lines"], 25)
        objs = lcutil.list_versions(self.s3, self.bucket)
        g = [k for k in objs if "/std/" in k]
        self.assertEqual(len(g), 1)
        self.assertEqual(objs[g[0]][0][1], "GLACIER")


if __name__ == "__main__":
    unittest.main()
