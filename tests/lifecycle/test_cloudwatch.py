"""CloudWatch Logs as the lifecycle's hot tier (lifecycle/cloudwatch.c, docs/cloudwatch.md), end to end:
the real strata binary (serve, lifecycle run, check-config) against moto_server on 127.0.0.1 (started
and stopped here) with boto3 as the independent checker, plus the scripted fake of
tests/objstore/cwfake.py for throttling.

Covered: shipping (exactly the pushed lines once, reruns add nothing, new lines only once, 10,000-event
batches), a run killed right after PutLogEvents and right after recording its intent (the next run
neither duplicates nor loses a line), import (labels, reruns, events added later, events sharing a
millisecond, a run killed after the ingest), retention (cloudwatch_retention_days and the nearest value
above the hot tier), check-config errors with file:line, a dry run that changes nothing, and retried
throttling.

Environment: STRATA_BIN (default build/server/strata); moto_server and boto3 from the Python path.
Run: python3 -m unittest discover -s tests/lifecycle"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "objstore"))

import cwfake  # noqa: E402
import s3util  # noqa: E402

try:
    import boto3
except ImportError:  # the tests that need moto are skipped
    boto3 = None

REPO = s3util.REPO


def strata_bin():
    env = os.environ.get("STRATA_BIN")
    if env:
        return env
    for d in ("build", "build-h9", "build-lead", "build-asan"):
        p = os.path.join(REPO, d, "server", "strata")
        if os.access(p, os.X_OK):
            return p
    return None


def aws_env(**extra):
    env = s3util.base_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_DEFAULT_REGION="us-east-1",
                          STRATA_CW_RETRY_BASE_MS=5, STRATA_LOG_LEVEL="warn")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Strata:
    """One data directory and config; serve() / stop() / lifecycle() around it."""

    def __init__(self, lifecycle_yaml, tmp):
        self.dir = tempfile.mkdtemp(prefix="cw-", dir=tmp)
        self.port = s3util.free_port()
        self.cfg = os.path.join(self.dir, "strata.yaml")
        self.head = (f"server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: {self.port}\n"
                     f"common:\n  path_prefix: {self.dir}/data\n")
        self.lifecycle_yaml = lifecycle_yaml
        self.write()
        self.proc = None

    def write(self):
        with open(self.cfg, "w") as f:
            f.write(self.head + self.lifecycle_yaml)

    def serve(self, env):
        self.log = open(os.path.join(self.dir, "serve.log"), "a")
        self.proc = subprocess.Popen([strata_bin(), "serve", f"-config.file={self.cfg}"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata serve exited {self.proc.returncode}: " + open(self.log.name).read()[-2000:])
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1).status == 200:
                    return
            except Exception:
                time.sleep(0.1)
        raise RuntimeError("strata serve not ready")

    def http(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method,
                                     headers=headers or {})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()

    def push(self, streams):
        """streams: [(labels dict, [(ts_ns, line), ...])]"""
        body = {"streams": [{"stream": l, "values": [[str(ts), line] for ts, line in v]} for l, v in streams]}
        st, _ = self.http("POST", "/loki/api/v1/push", json.dumps(body).encode(), {"Content-Type": "application/json"})
        assert st == 204, st

    def query(self, q, start_ns, end_ns):
        qs = urllib.parse.urlencode({"query": q, "start": start_ns, "end": end_ns, "limit": 5000,
                                     "direction": "forward"})
        _, b = self.http("GET", "/loki/api/v1/query_range?" + qs)
        return json.loads(b)["data"]["result"]

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
            self.proc = None
            self.log.close()

    def lifecycle(self, env, *args):
        p = subprocess.run([strata_bin(), "lifecycle", "run", f"-config.file={self.cfg}", *args], env=env,
                           capture_output=True, text=True, timeout=300)
        return p

    def check_config(self, env):
        return subprocess.run([strata_bin(), "check-config", f"-config.file={self.cfg}"], env=env, capture_output=True,
                              text=True, timeout=60)


def now_ns():
    return time.time_ns()


@unittest.skipIf(strata_bin() is None, "strata binary not built (set STRATA_BIN)")
class CloudWatchMoto(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if boto3 is None:
            raise unittest.SkipTest("boto3 missing")
        cls.moto = s3util.Moto()
        try:
            if not cls.moto.start():
                raise unittest.SkipTest("moto_server not installed")
        except RuntimeError as e:
            raise unittest.SkipTest(str(e))
        cls.logs = boto3.client("logs", endpoint_url=cls.moto.url, region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="y")
        cls.tmp = tempfile.mkdtemp(prefix="strata-cw-tests-")

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.p = "/t" + uuid.uuid4().hex[:10]  # a group prefix of this test
        self.env = aws_env()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def strata(self, lifecycle_yaml):
        s = Strata(lifecycle_yaml, self.tmp)
        self.servers.append(s)
        return s

    def cw_events(self, group, stream):
        out, token = [], None
        while True:
            kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                kw["nextToken"] = token
            r = self.logs.get_log_events(**kw)
            out += [(e["timestamp"], e["message"]) for e in r["events"]]
            if r["nextForwardToken"] == token:
                return out
            token = r["nextForwardToken"]

    def groups(self, prefix):
        r = self.logs.describe_log_groups(logGroupNamePrefix=prefix)
        return {g["logGroupName"]: g.get("retentionInDays") for g in r["logGroups"]}

    def ship_yaml(self, extra="", policies=None):
        pol = policies or ("  policies:\n    - name: keep\n      tiers:\n        - {class: hot, until: 10d}\n"
                           "  default_policy: keep\n")
        return ("lifecycle:\n" + pol +
                f"  cloudwatch:\n    endpoint: {self.moto.url}\n    region: us-east-1\n" + extra +
                "    ship:\n"
                "      - selector: '{app=\"payments\"}'\n"
                f"        log_group: {self.p}/{{tenant}}/payments\n"
                "        log_stream: \"{host}\"\n")

    def push_and_stop(self, s, streams):
        s.serve(self.env)
        s.push(streams)
        s.http("POST", "/flush")
        s.stop()

    # ---- (a) ship -------------------------------------------------------------------------------------

    def test_ship_exactly_once(self):
        s = self.strata(self.ship_yaml())
        t = now_ns()
        self.push_and_stop(s, [({"app": "payments", "host": "h1"}, [(t + i * 1000000, f"pay h1 {i}") for i in range(5)]),
                               ({"app": "payments", "host": "h2"}, [(t, "pay h2 \u00e9 \"quoted\"\ttab")]),
                               ({"app": "web", "host": "h1"}, [(t, "not shipped")])])
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        g = f"{self.p}/fake/payments"
        self.assertEqual(set(self.groups(self.p)), {g})
        self.assertEqual([m for _, m in self.cw_events(g, "h1")], [f"pay h1 {i}" for i in range(5)])
        self.assertEqual(self.cw_events(g, "h1")[0][0], t // 1000000)
        self.assertEqual([m for _, m in self.cw_events(g, "h2")], ["pay h2 \u00e9 \"quoted\"\ttab"])
        self.assertIn("cloudwatch: shipped 6 events", p.stdout)
        # a rerun ships nothing
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("cloudwatch: shipped 0 events", p.stdout)
        self.assertEqual(len(self.cw_events(g, "h1")), 5)
        # new lines: only those go
        t2 = now_ns()
        self.push_and_stop(s, [({"app": "payments", "host": "h1"}, [(t2, "later 1"), (t2 + 1000000, "later 2")])])
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([m for _, m in self.cw_events(g, "h1")], [f"pay h1 {i}" for i in range(5)] + ["later 1", "later 2"])
        self.assertEqual(len(self.cw_events(g, "h2")), 1)

    def test_ship_large_stream_in_valid_batches(self):
        s = self.strata(self.ship_yaml())
        t = now_ns() - 3600 * 10**9
        n = 23000
        s.serve(self.env)
        for k in range(0, n, 5000):
            s.push([({"app": "payments", "host": "big"},
                     [(t + i * 1000000, f"line {i:05d} " + "x" * 40) for i in range(k, min(n, k + 5000))])])
        s.http("POST", "/flush")
        s.stop()
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = self.cw_events(f"{self.p}/fake/payments", "big")
        self.assertEqual(len(ev), n)
        self.assertEqual([m for _, m in ev], [f"line {i:05d} " + "x" * 40 for i in range(n)])
        # 23,000 events of 77 bytes: 3 requests by count (10,000 max), 2 would do by bytes (1,048,576)
        self.assertRegex(p.stderr, r"shipped 23000 events \(\d+ bytes\) of tenant fake to \S+ big in 3 requests")

    def test_ship_killed_after_put_or_after_intent(self):
        for point, delivered in (("cw-ship-after-put", True), ("cw-ship-after-intent", False)):
            with self.subTest(point=point):
                self.p = "/t" + uuid.uuid4().hex[:10]
                s = self.strata(self.ship_yaml())
                t = now_ns()
                lines = [f"{point} {i}" for i in range(4)]
                self.push_and_stop(s, [({"app": "payments", "host": "k"}, [(t + i, l) for i, l in enumerate(lines)])])
                p = s.lifecycle(aws_env(STRATA_TEST_CRASH_AT=point))
                self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
                g = f"{self.p}/fake/payments"
                got = [m for _, m in self.cw_events(g, "k")] if self.groups(self.p) else []
                self.assertEqual(got, lines if delivered else [])
                p = s.lifecycle(self.env)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn("was delivered" if delivered else "was not delivered", p.stderr)
                self.assertEqual([m for _, m in self.cw_events(g, "k")], lines)
                p = s.lifecycle(self.env)
                self.assertEqual([m for _, m in self.cw_events(g, "k")], lines)

    # ---- (b) import -----------------------------------------------------------------------------------

    def import_yaml(self, group_prefix, extra=""):
        return ("lifecycle:\n"
                "  policies:\n    - name: imp\n      tiers:\n        - {class: hot, until: 100d}\n"
                "  rules:\n    - {selector: '{source=\"cloudwatch\"}', policy: imp}\n"
                f"  cloudwatch:\n    endpoint: {self.moto.url}\n" + extra +
                "    import:\n"
                f"      - log_group_prefix: {group_prefix}\n"
                "        tenant: fake\n"
                "        labels: {source: cloudwatch, env: test}\n"
                "        start: 1d\n")

    def put_cw(self, group, stream, events):
        try:
            self.logs.create_log_group(logGroupName=group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        self.logs.put_log_events(logGroupName=group, logStreamName=stream,
                                 logEvents=[{"timestamp": ts, "message": m} for ts, m in events])

    def imported(self, s, group, t0):
        s.serve(self.env)
        try:
            res = s.query(f'{{log_group="{group}"}}', (t0 - 60000) * 1000000, now_ns() + 60 * 10**9)
        finally:
            s.stop()
        out = {}
        for r in res:
            key = tuple(sorted(r["stream"].items()))
            out[key] = [v[1] for v in r["values"]]
        return out

    def test_import_once_then_only_new_events(self):
        g = f"{self.p}/aws/lambda/fn"
        stream = "2026/11/26/[$LATEST]abc"
        t0 = int(time.time() * 1000) - 5000
        self.put_cw(g, stream, [(t0, "start"), (t0 + 1, "same ms a"), (t0 + 1, "same ms b"), (t0 + 2, "end")])
        self.put_cw(g, "other", [(t0, "other stream")])
        s = self.strata(self.import_yaml(f"{self.p}/aws/"))
        s.serve(self.env)  # creates the data directory
        s.stop()
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertIn("imported 5 events", p.stdout)
        labels = (("env", "test"), ("log_group", g), ("log_stream", stream), ("source", "cloudwatch"))
        got = self.imported(s, g, t0)
        self.assertEqual(got[labels], ["start", "same ms a", "same ms b", "end"])
        self.assertEqual(len(got), 2)
        # rerun: nothing new
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("imported 0 events", p.stdout)
        self.assertEqual(self.imported(s, g, t0)[labels], ["start", "same ms a", "same ms b", "end"])
        # later events, one of them in the millisecond the cursor stands on
        self.put_cw(g, stream, [(t0 + 2, "end twin"), (t0 + 3, "after")])
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("imported 2 events", p.stdout)
        self.assertEqual(sorted(self.imported(s, g, t0)[labels]),
                         sorted(["start", "same ms a", "same ms b", "end", "end twin", "after"]))

    def test_import_killed_after_ingest(self):
        g = f"{self.p}/crash/fn"
        t0 = int(time.time() * 1000) - 5000
        self.put_cw(g, "s", [(t0 + i, f"event {i}") for i in range(3)])
        s = self.strata(self.import_yaml(f"{self.p}/crash/"))
        s.serve(self.env)
        s.stop()
        p = s.lifecycle(aws_env(STRATA_TEST_CRASH_AT="cw-import-after-ingest"))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = self.imported(s, g, t0)
        self.assertEqual(list(got.values()), [[f"event {i}" for i in range(3)]])
        # the same, with events added between the two runs
        g2 = f"{self.p}/crash2/fn"
        self.put_cw(g2, "s", [(t0 + i, f"event {i}") for i in range(3)])
        s2 = self.strata(self.import_yaml(f"{self.p}/crash2/"))
        s2.serve(self.env)
        s2.stop()
        p = s2.lifecycle(aws_env(STRATA_TEST_CRASH_AT="cw-import-after-ingest"))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        self.put_cw(g2, "s", [(t0 + 10, "event 10")])
        p = s2.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(list(self.imported(s2, g2, t0).values()), [[f"event {i}" for i in (0, 1, 2, 10)]])
        # the same, with the interrupted push flushed into a chunk before the next run (serve replays the
        # WAL and closes every head on SIGTERM): the next run finds it in the index and moves on
        g3 = f"{self.p}/crash3/fn"
        self.put_cw(g3, "s", [(t0 + i, f"event {i}") for i in range(3)])
        s3 = self.strata(self.import_yaml(f"{self.p}/crash3/"))
        s3.serve(self.env)
        s3.stop()
        p = s3.lifecycle(aws_env(STRATA_TEST_CRASH_AT="cw-import-after-ingest"))
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        s3.serve(self.env)
        s3.stop()
        p = s3.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("had been stored; cursor moved on", p.stderr)
        self.assertEqual(list(self.imported(s3, g3, t0).values()), [[f"event {i}" for i in range(3)]])

    def test_import_while_serving(self):
        # strata serve holds the data directory: an offline run leaves the import to the server, whose
        # own lifecycle worker imports through its ingester
        g = f"{self.p}/srv/fn"
        t0 = int(time.time() * 1000) - 5000
        self.put_cw(g, "s", [(t0, "imported by serve"), (t0 + 1, "second")])
        s = self.strata(self.import_yaml(f"{self.p}/srv/").replace("lifecycle:\n", "lifecycle:\n  enabled: false\n"))
        s.serve(self.env)
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("import skipped", p.stderr)
        s.stop()
        s.lifecycle_yaml = s.lifecycle_yaml.replace("enabled: false", "enabled: true\n  interval: 1s")
        s.write()
        s.serve(self.env)
        deadline, got = time.time() + 20, []
        while time.time() < deadline:
            res = s.query(f'{{log_group="{g}"}}', (t0 - 60000) * 1000000, now_ns() + 60 * 10**9)
            got = [v[1] for r in res for v in r["values"]]
            if len(got) >= 2:
                break
            time.sleep(0.3)
        time.sleep(2.5)  # a few more runs of the worker: still imported once
        res = s.query(f'{{log_group="{g}"}}', (t0 - 60000) * 1000000, now_ns() + 60 * 10**9)
        s.stop()
        self.assertEqual(sorted(v[1] for r in res for v in r["values"]), ["imported by serve", "second"])

    # ---- (c) retention ----------------------------------------------------------------------------------

    def test_retention_follows_policies(self):
        policies = ("  policies:\n"
                    "    - name: p30\n      tiers:\n        - {class: hot, until: 90d}\n      cloudwatch_retention_days: 30\n"
                    "    - name: hot10\n      tiers:\n        - {class: hot, until: 10d}\n"
                    "    - name: imp\n      tiers:\n        - {class: hot, until: 100d}\n"
                    "  rules:\n"
                    "    - {selector: '{app=\"payments\"}', policy: p30}\n"
                    "    - {selector: '{source=\"cloudwatch\"}', policy: imp}\n"
                    "  default_policy: hot10\n")
        yaml = ("lifecycle:\n" + policies +
                f"  cloudwatch:\n    endpoint: {self.moto.url}\n    manage_retention: true\n"
                "    ship:\n"
                f"      - {{selector: '{{app=~\"payments|web\"}}', log_group: '{self.p}/{{app}}', log_stream: '{{host}}'}}\n"
                "    import:\n"
                f"      - {{log_group: '{self.p}/imported', labels: {{source: cloudwatch}}}}\n")
        s = self.strata(yaml)
        t = now_ns()
        self.push_and_stop(s, [({"app": "payments", "host": "a"}, [(t, "p")]), ({"app": "web", "host": "a"}, [(t, "w")])])
        self.put_cw(f"{self.p}/imported", "s", [(t // 1000000, "i")])
        self.logs.put_retention_policy(logGroupName=f"{self.p}/imported", retentionInDays=7)
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertEqual(self.groups(self.p), {f"{self.p}/payments": 30, f"{self.p}/web": 14, f"{self.p}/imported": 120})
        self.assertIn("retention of " + f"{self.p}/imported set to 120 days (was 7 days)", p.stderr)
        # in line already: no calls
        p = s.lifecycle(self.env)
        self.assertIn("0 retention changes", p.stdout)

    def test_check_config_rejects_bad_values_with_file_line(self):
        yaml = ("lifecycle:\n"
                "  policies:\n"
                "    - name: p\n"
                "      tiers:\n"
                "        - {class: hot, until: 7d}\n"
                "      cloudwatch_retention_days: 2555\n"
                "  cloudwatch:\n"
                "    ship:\n"
                "      - selector: '{app=\"x\"}'\n"
                "        log_group: /bad group/{tenant}\n"
                "        log_stream: 'a:{host}'\n"
                "      - log_group: /ok/{1bad}\n"
                "    import:\n"
                "      - log_group_prefix: 'no spaces allowed'\n"
                "        labels: {log_group: x}\n"
                "      - {}\n"
                "    colour: blue\n")
        s = self.strata(yaml)
        p = s.check_config(self.env)
        self.assertNotEqual(p.returncode, 0)
        with open(s.cfg) as f:
            lines = f.read().splitlines()

        def line_of(text):
            return next(i + 1 for i, l in enumerate(lines) if text in l)

        cfg = s.cfg
        err = p.stderr
        # (policy.c reports policy-level checks at the policy's own line)
        self.assertIn(f"{cfg}:{line_of('- name: p')}: lifecycle.policies[0].cloudwatch_retention_days: "
                      "2555 is not a CloudWatch Logs retention value (nearest allowed above: 2557)", err)
        self.assertIn(f"{cfg}:{line_of('/bad group/')}: lifecycle.cloudwatch.ship[0].log_group: \"/bad group/{{tenant}}\": "
                      "character ' ' is not allowed", err)
        self.assertIn(f"{cfg}:{line_of('a:{host}')}: lifecycle.cloudwatch.ship[0].log_stream:", err)
        self.assertIn(f"{cfg}:{line_of('{1bad}')}: lifecycle.cloudwatch.ship[1].log_group: \"/ok/{{1bad}}\": placeholder "
                      "{1bad}", err)
        self.assertIn(f"{cfg}:{line_of('no spaces allowed')}: lifecycle.cloudwatch.import[0].log_group_prefix:", err)
        self.assertIn(f"{cfg}:{line_of('labels: {log_group')}: lifecycle.cloudwatch.import[0].labels.log_group: reserved",
                      err)
        self.assertIn(f"{cfg}:{line_of('- {}')}: lifecycle.cloudwatch.import[1].log_group_prefix: is required", err)
        self.assertIn(f"{cfg}:{line_of('colour')}: lifecycle.cloudwatch.colour: unknown key", err)
        # the good configuration passes
        s.lifecycle_yaml = self.ship_yaml()
        s.write()
        p = s.check_config(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)

    # ---- dry run ---------------------------------------------------------------------------------------

    def test_dry_run_changes_nothing(self):
        g_imp = f"{self.p}/dry/fn"
        t = now_ns()
        self.put_cw(g_imp, "s", [(t // 1000000, "in cloudwatch")])
        yaml = self.ship_yaml("    manage_retention: true\n") + (
            "    import:\n"
            f"      - {{log_group_prefix: '{self.p}/dry/', labels: {{source: cw}}}}\n")
        s = self.strata(yaml)
        self.push_and_stop(s, [({"app": "payments", "host": "d"}, [(t + i, f"dry {i}") for i in range(3)])])
        p = s.lifecycle(self.env, "--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        self.assertRegex(p.stdout, r"cloudwatch ship +fake +\{app=\"payments\", host=\"d\"[^}]*\} -> \S+/fake/payments d: "
                                   r"3 events, \d+ bytes")
        self.assertIn(f"cloudwatch import  {g_imp} (1 streams) -> tenant fake", p.stdout)
        self.assertIn(f"cloudwatch retention {g_imp}: never expire -> 14 days", p.stdout)
        self.assertRegex(p.stdout, r"cloudwatch: ship 3 events \(\d+ bytes\) in 1 PutLogEvents requests, \$0\.0000")
        self.assertEqual(self.groups(self.p), {g_imp: None})  # nothing created, no retention set
        # the real run then does all of it
        p = s.lifecycle(self.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([m for _, m in self.cw_events(f"{self.p}/fake/payments", "d")], [f"dry {i}" for i in range(3)])
        self.assertIn("imported 1 events", p.stdout)
        self.assertEqual(self.groups(self.p)[g_imp], 14)


@unittest.skipIf(strata_bin() is None, "strata binary not built (set STRATA_BIN)")
class CloudWatchFaults(unittest.TestCase):
    def test_throttled_ship_is_retried(self):
        fake = cwfake.FakeLogs()
        tmp = tempfile.mkdtemp(prefix="strata-cw-fault-")
        try:
            fake.reset([("PutLogEvents", "throttle"), ("PutLogEvents", "503"), ("PutLogEvents", "throttle")])
            yaml = ("lifecycle:\n  policies:\n    - name: keep\n      tiers:\n        - {class: hot, until: 10d}\n"
                    "  default_policy: keep\n"
                    f"  cloudwatch:\n    endpoint: {fake.url}\n    max_attempts: 5\n    ship:\n"
                    "      - {selector: '{app=\"f\"}', log_group: /fault, log_stream: s}\n")
            s = Strata(yaml, tmp)
            env = aws_env()
            s.serve(env)
            t = now_ns()
            s.push([({"app": "f"}, [(t + i, f"f{i}") for i in range(3)])])
            s.http("POST", "/flush")
            s.stop()
            p = s.lifecycle(env)
            self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
            self.assertEqual([m for _, m in fake.events("/fault", "s")], ["f0", "f1", "f2"])
            # the first PutLogEvents finds no group: group and stream are created, then 3 scripted failures
            self.assertEqual(len(fake.ops("PutLogEvents")), 5)
            # every attempt failing: the run reports a failure and the next run ships it
            fake.reset([("PutLogEvents", "throttle")] * 5)
            fake.groups["/fault"] = {"retention": None, "streams": {"s": []}}
            s.serve(env)
            s.push([({"app": "f"}, [(now_ns(), "g0")])])
            s.http("POST", "/flush")
            s.stop()
            p = s.lifecycle(env)
            self.assertEqual(p.returncode, 1, p.stderr + p.stdout)
            self.assertIn("ThrottlingException", p.stderr)
            self.assertEqual(fake.events("/fault", "s"), [])
            p = s.lifecycle(env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual([m for _, m in fake.events("/fault", "s")], ["g0"])
        finally:
            fake.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
