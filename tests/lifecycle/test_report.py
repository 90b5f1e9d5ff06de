"""The retention report against moto_server, with `strata lifecycle run --now` stepping through time
(docs/compliance.md). Every number of the JSON report is checked against what the test put in: streams,
chunks, entries, bytes per tier (from the chunk files on disk and the objects in the bucket), oldest and
newest entries, next transition and deletion dates, legal basis, Object Lock, objects, erasure requests,
the cost per tier from a configured price table, the audit trail's state. Violations appear when the test
causes them: an object removed behind Strata's back with boto3, a policy shortened in the configuration
(data past its deletion date, data in a tier its policy no longer lists). The same report comes from
GET /strata/api/v1/reports/retention, as CSV, and as HTML rendered by headless Chromium (the page loads,
shows the summary first and the plot; its screenshot is not blank).

Run: python3 -m unittest discover -s tests/lifecycle -p 'test_report*.py'"""
import csv
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import zlib

import lcutil
from lcutil import DAY, NS

HOUR = 3600 * NS
GIB = float(1 << 30)
BUCKET = "strata-report"

POLICIES = """    - name: gdpr
      legal_basis: "GDPR Art. 5(1)(e): storage limitation"
      erasable: true
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
      delete_after: 30d
    - name: sox
      legal_basis: "SOX s.802 / SEC 17a-4"
      immutable: true
      object_lock: GOVERNANCE
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
        - {class: GLACIER, until: 365d}
      delete_after: 400d
"""
SHORTENED = """    - name: gdpr
      legal_basis: "GDPR Art. 5(1)(e): storage limitation"
      erasable: true
      allow_early_delete: true
      tiers:
        - {class: hot, until: 2d}
        - {class: STANDARD, until: 5d}
      delete_after: 5d
    - name: sox
      legal_basis: "SOX s.802 / SEC 17a-4"
      immutable: true
      object_lock: GOVERNANCE
      tiers:
        - {class: hot, until: 7d}
        - {class: GLACIER, until: 365d}
      delete_after: 400d
"""
RULES = """    - {selector: '{retention="gdpr"}', policy: gdpr}
    - {selector: '{retention="sox"}', policy: sox}
"""
PRICES = """  audit:
    enabled: true
  prices:
    storage_gb_month: {hot: 0.1, STANDARD: 0.02, GLACIER: 0.0036}
    requests_per_1000: {STANDARD: 0.006}
"""
PRICE_HOT, PRICE_STD, PRICE_GLACIER, REQ_STD = 0.1, 0.02, 0.0036, 0.006

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


def uvarint(b, pos):
    x = shift = 0
    while True:
        c = b[pos]
        pos += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, pos
        shift += 7


def chunk_labels(data, off=0):
    """The label text in a chunk's header (docs/formats.md: STCK, version, codec, flags, header_len,
    lstr tenant, lstr labels)."""
    assert data[off:off + 4] == b"STCK"
    pos = off + 12
    n, pos = uvarint(data, pos)
    pos += n
    n, pos = uvarint(data, pos)
    return data[pos:pos + n].decode()


def read(path):
    with open(path, "rb") as f:
        return f.read()


class ReportTest(unittest.TestCase):
    """One data set through upload, erasure and two kinds of violation; the test methods run in order."""

    @classmethod
    def setUpClass(cls):
        cls.s3 = lcutil.boto("s3", MOTO.url)
        cls.s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        cls.lc = lambda policies: lcutil.lifecycle_yaml(MOTO.url, BUCKET, policies, RULES, extra=PRICES)
        cls.st = lcutil.Strata(cls.lc(POLICIES), extra_yaml="compactor:\n  delete_request_cancel_period: 0s\n")
        st = cls.st
        st.serve()
        cls.D = D = lcutil.day_start(time.time_ns()) - 3 * DAY
        # (labels, hour, lines): one chunk each
        cls.pushes = [({"app": "web", "retention": "gdpr"}, 1, 20), ({"app": "web", "retention": "gdpr"}, 20, 20),
                      ({"app": "ledger", "retention": "sox"}, 2, 30), ({"app": "misc"}, 3, 10)]
        for labels, h, n in cls.pushes:
            st.push([(labels, [(D + h * HOUR + i * NS, f"{labels['app']} h{h} line {i}") for i in range(n)])])
            st.flush()

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()

    # ---- helpers

    def report(self, as_of, *args, expect=None, fmt="json"):
        p = self.st.run("report", "retention", f"--as-of={lcutil.rfc3339(as_of)}", f"--format={fmt}", *args)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        if expect is not None:
            self.assertEqual(p.returncode, expect, p.stderr + p.stdout[:3000])
        return json.loads(p.stdout) if fmt == "json" else p.stdout

    def stream(self, rep, app):
        s = [x for x in rep["streams"] if f'app="{app}"' in x["labels"]]
        self.assertEqual(len(s), 1, rep["streams"])
        return s[0]

    def policy(self, rep, name):
        return [p for p in rep["policies"] if p["name"] == name][0]

    def times(self, app):
        """Per chunk of a stream: (min_ts, max_ts, entries)."""
        return [(self.D + h * HOUR, self.D + h * HOUR + (n - 1) * NS, n) for l, h, n in self.pushes if l["app"] == app]

    def local_bytes(self):
        """Chunk bytes on local disk per stream label text (each pack file holds one chunk here)."""
        out = {}
        for f in self.st.local_chunk_files():
            data = read(f)
            out[chunk_labels(data)] = out.get(chunk_labels(data), 0) + len(data)
        return out

    def bucket(self):
        """{key: (class, size, {labels: chunk bytes})} of the data objects in the bucket."""
        out = {}
        for o in self.s3.list_objects_v2(Bucket=BUCKET, Prefix="strata/fake/").get("Contents", []):
            data = self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            per = {}
            for _, off, length, _ in lcutil.parse_pack(data)[2]:
                per[chunk_labels(data, off)] = per.get(chunk_labels(data, off), 0) + length
            out[o["Key"]] = (o.get("StorageClass", "STANDARD"), o["Size"], per)
        return out

    def assert_cost(self, rep, hot_bytes, std_bytes, std_requests):
        c = rep["cost"]["tiers"]
        self.assertEqual(c["hot"]["bytes"], hot_bytes)
        self.assertEqual(c["STANDARD"]["bytes"], std_bytes)
        self.assertEqual(c["hot"]["price_gb_month"], PRICE_HOT)
        self.assertEqual(c["STANDARD"]["price_gb_month"], PRICE_STD)
        self.assertEqual(c["GLACIER"]["price_gb_month"], PRICE_GLACIER)
        self.assertEqual(c["DEEP_ARCHIVE"]["price_gb_month"], 0.00099)  # default
        self.assertAlmostEqual(c["hot"]["storage_usd_month"], hot_bytes / GIB * PRICE_HOT, places=15)
        self.assertAlmostEqual(c["STANDARD"]["storage_usd_month"], std_bytes / GIB * PRICE_STD, places=15)
        self.assertEqual(c["STANDARD"]["requests_last_30d"], std_requests)
        self.assertAlmostEqual(c["STANDARD"]["requests_usd_month"], std_requests / 1000 * REQ_STD, places=12)
        total = hot_bytes / GIB * PRICE_HOT + std_bytes / GIB * PRICE_STD + std_requests / 1000 * REQ_STD
        self.assertAlmostEqual(rep["cost"]["total_usd_month"], total, places=12)
        self.assertAlmostEqual(rep["summary"]["monthly_cost_usd"], total, places=12)
        self.assertAlmostEqual(rep["cost"]["all_hot_usd_month"], (hot_bytes + std_bytes) / GIB * PRICE_HOT, places=12)

    # ---- 1: everything hot

    def test_1_hot(self):
        D = self.D
        rep = self.report(D + DAY, expect=0)
        local = self.local_bytes()
        self.assertEqual(len(local), 3)
        s = rep["summary"]
        self.assertEqual(s["streams"], 3)
        self.assertEqual(s["chunks"], 4)
        self.assertEqual(s["entries"], 80)
        line_bytes = sum(len(f"{l['app']} h{h} line {i}") for l, h, n in self.pushes for i in range(n))
        self.assertGreaterEqual(s["raw_bytes"], line_bytes)  # lines plus any structured metadata
        self.assertEqual(s["raw_bytes"], sum(x["raw_bytes"] for x in rep["streams"]))
        self.assertEqual(s["bytes"], sum(local.values()))
        self.assertEqual(s["tiers"]["hot"], {"chunks": 4, "bytes": sum(local.values())})
        self.assertEqual(s["tiers"]["STANDARD"]["chunks"], 0)
        self.assertEqual(s["objects"], 0)
        self.assertEqual(s["violations"], 0)
        self.assertEqual(s["audit_chain"], "intact")
        self.assertEqual(rep["violations"], [])
        self.assertEqual(rep["as_of"], lcutil.rfc3339(D + DAY))
        for app, pol in (("web", "gdpr"), ("ledger", "sox"), ("misc", None)):
            st = self.stream(rep, app)
            chunks = self.times(app)
            self.assertEqual(st["policy"], pol)
            self.assertEqual(st["chunks"], len(chunks))
            self.assertEqual(st["entries"], sum(n for _, _, n in chunks))
            self.assertEqual(st["bytes"], local[st["labels"]])
            self.assertEqual(st["tiers"]["hot"], {"chunks": len(chunks), "bytes": local[st["labels"]]})
            self.assertEqual(st["oldest"], lcutil.rfc3339(min(a for a, _, _ in chunks)))
            self.assertEqual(st["newest"], lcutil.rfc3339(max(b for _, b, _ in chunks)))
            if pol is None:
                self.assertIsNone(st["next_transition"])
                self.assertIsNone(st["next_deletion"])
                continue
            first_max = min(b for _, b, _ in chunks)
            last_max = max(b for _, b, _ in chunks)
            self.assertEqual(st["next_transition"], lcutil.rfc3339(first_max + 7 * DAY))
            self.assertEqual(st["next_transition_to"], "STANDARD")
            keep = 30 if pol == "gdpr" else 400
            self.assertEqual(st["next_deletion"], lcutil.rfc3339(first_max + keep * DAY))
            self.assertEqual(st["deleted_entirely"], lcutil.rfc3339(last_max + keep * DAY))
        g, x = self.policy(rep, "gdpr"), self.policy(rep, "sox")
        self.assertEqual(g["legal_basis"], "GDPR Art. 5(1)(e): storage limitation")
        self.assertEqual(x["legal_basis"], "SOX s.802 / SEC 17a-4")
        self.assertEqual(g["object_lock"], "")
        self.assertEqual(x["object_lock"], "GOVERNANCE")
        self.assertTrue(x["immutable"])
        self.assertEqual(g["delete_after"], "30d")
        self.assertEqual([t["class"] for t in x["allowed_tiers"]], ["hot", "STANDARD", "GLACIER"])
        self.assertEqual((g["streams"], g["chunks"], g["entries"]), (1, 2, 40))
        self.assertEqual((x["streams"], x["chunks"], x["entries"]), (1, 1, 30))
        self.assertEqual(g["next_deletion"], lcutil.rfc3339(self.times("web")[0][1] + 30 * DAY))
        none = [p for p in rep["policies"] if p["name"] is None][0]
        self.assertEqual(none["streams"], 1)
        self.assert_cost(rep, sum(local.values()), 0, 0)
        self.assertTrue(rep["audit"]["enabled"] and rep["audit"]["intact"])
        self.assertGreaterEqual(rep["audit"]["records"], 6)  # open, config, 4 chunk writes
        # scoped: one tenant, one policy
        rep = self.report(D + DAY, "--policy=sox", expect=0)
        self.assertEqual(rep["summary"]["streams"], 1)
        self.assertEqual([p["name"] for p in rep["policies"]], ["sox"])
        rep = self.report(D + DAY, "--tenant=nobody", expect=0)
        self.assertEqual(rep["summary"]["streams"], 0)

    # ---- 2: uploaded to S3 Standard

    def test_2_uploaded(self):
        D, st = self.D, self.st
        st.lifecycle(D + 8 * DAY + HOUR)
        as_of = D + 8 * DAY + 2 * HOUR
        rep = self.report(as_of, expect=0)
        objs = self.bucket()
        self.assertEqual(len(objs), 2)
        local = self.local_bytes()
        self.assertEqual(len(local), 1)  # misc stays hot
        s = rep["summary"]
        std_bytes = sum(size for _, size, _ in objs.values())
        self.assertEqual(s["tiers"]["hot"], {"chunks": 1, "bytes": sum(local.values())})
        self.assertEqual(s["tiers"]["STANDARD"],
                         {"chunks": 3, "bytes": sum(sum(p.values()) for _, _, p in objs.values()), "objects": 2,
                          "object_bytes": std_bytes})
        self.assertEqual(s["objects"], 2)
        keys = sorted(o["key"] for o in rep["objects"])
        self.assertEqual(keys, sorted(objs))
        for o in rep["objects"]:
            cls, size, per = objs[o["key"]]
            self.assertEqual((o["class"], o["size"], o["status"]), (cls, size, "ok"))
            self.assertEqual(o["chunks"], 2 if o["policy"] == "gdpr" else 1)
            head = self.s3.head_object(Bucket=BUCKET, Key=o["key"])
            self.assertEqual(o["version_id"], head["VersionId"])
            if o["policy"] == "sox":
                self.assertEqual(o["lock_mode"], "GOVERNANCE")
                until = int(head["ObjectLockRetainUntilDate"].timestamp()) * NS
                self.assertEqual(o["retain_until"], lcutil.rfc3339(until))
                self.assertEqual(o["retain_until"], o["delete_at"])
            else:
                self.assertEqual(o["lock_mode"], "")
        web, ledger = self.stream(rep, "web"), self.stream(rep, "ledger")
        per_stream = {}
        for _, _, per in objs.values():
            for k, v in per.items():
                per_stream[k] = per_stream.get(k, 0) + v
        self.assertEqual(web["tiers"]["STANDARD"], {"chunks": 2, "bytes": per_stream[web["labels"]]})
        self.assertEqual(web["tiers"]["hot"]["chunks"], 0)
        # gdpr's last tier is STANDARD: no further move, deletion at max_ts + 30d
        self.assertIsNone(web["next_transition"])
        # sox moves into GLACIER once its whole day is 30 days old
        self.assertEqual(ledger["next_transition"], lcutil.rfc3339(D + DAY + 30 * DAY))
        self.assertEqual(ledger["next_transition_to"], "GLACIER")
        sox = self.policy(rep, "sox")
        self.assertEqual(sox["locked_objects"], 1)
        self.assertEqual(sox["tiers"]["STANDARD"]["objects"], 1)
        self.assert_cost(rep, sum(local.values()), std_bytes, 2)
        # bytes per tier over time end with what is stored now
        h = rep["history"]
        self.assertEqual(h[-1]["time"], lcutil.rfc3339(as_of))
        self.assertEqual((h[-1]["hot"], h[-1]["STANDARD"]), (sum(local.values()), std_bytes))
        self.assertTrue(any(p["hot"] > sum(local.values()) for p in h[:-1]), h)  # before the upload
        # the API answers the same for the request's tenant
        code, body = st.request("GET", "/strata/api/v1/reports/retention?" + urllib.parse.urlencode(
            {"as_of": lcutil.rfc3339(as_of)}))
        self.assertEqual(code, 200, body)
        api = json.loads(body)
        self.assertEqual(api["tenant"], "fake")
        for k in ("streams", "chunks", "bytes", "entries", "objects", "violations", "tiers"):
            self.assertEqual(api["summary"][k], s[k], k)
        code, body = st.request("GET", "/strata/api/v1/reports/retention?format=csv&as_of=" + lcutil.rfc3339(as_of))
        self.assertEqual(code, 200)
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        streams = [r for r in rows if r["record"] == "stream"]
        self.assertEqual(sorted((r["tier"], int(r["chunks"])) for r in streams),
                         [("STANDARD", 1), ("STANDARD", 2), ("hot", 1)])
        summary = [r for r in rows if r["record"] == "summary"][0]
        self.assertEqual((int(summary["chunks"]), int(summary["bytes"])), (s["chunks"], s["bytes"]))
        code, body = st.request("GET", "/strata/api/v1/reports/retention?format=pdf")
        self.assertEqual(code, 400)
        # the tier moves are in the trail, verified
        p = st.run("audit", "verify", "--all")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    # ---- 3: an erasure request, and one refused

    def test_3_erasure(self):
        D, st = self.D, self.st
        params = {"query": '{app="web"} |= "h20 line 1"', "start": lcutil.rfc3339(D), "end": lcutil.rfc3339(D + DAY)}
        code, body = st.request("POST", "/loki/api/v1/delete?" + urllib.parse.urlencode(params))
        self.assertEqual(code, 204, body)
        params["query"] = '{app="ledger"}'
        code, body = st.request("POST", "/loki/api/v1/delete?" + urllib.parse.urlencode(params))
        self.assertEqual(code, 400, body)  # immutable: refused
        st.lifecycle(time.time_ns() + 3 * HOUR)
        # 11 lines match "h20 line 1" (1, 10..19)
        rep = self.report(D + 8 * DAY + 3 * HOUR, expect=0)
        er = sorted(rep["erasure_requests"], key=lambda e: e["status"])
        self.assertEqual([e["status"] for e in er], ["processed", "refused"])
        self.assertEqual(er[0]["query"], '{app="web"} |= "h20 line 1"')
        self.assertEqual(er[0]["lines_removed"], 11)
        self.assertIsNotNone(er[0]["finished"])
        self.assertEqual(er[1]["query"], '{app="ledger"}')
        self.assertIn("deletion refused", er[1]["message"])
        self.assertEqual(self.stream(rep, "web")["entries"], 40 - 11)
        self.assertEqual(rep["summary"]["entries"], 80 - 11)
        objs = self.bucket()
        self.assertEqual(sorted(o["key"] for o in rep["objects"]), sorted(objs))
        self.assertEqual(rep["summary"]["tiers"]["STANDARD"]["object_bytes"], sum(s for _, s, _ in objs.values()))
        # the rewrite is deletion evidence
        p = st.run("report", "deletions", f"--from={lcutil.rfc3339(D)}", f"--to={lcutil.rfc3339(time.time_ns() + DAY)}")
        dels = json.loads(p.stdout)["deletions"]
        kinds = sorted((d["type"], d.get("status", "")) for d in dels)
        self.assertIn(("erasure.object", ""), kinds)
        self.assertIn(("erasure.processed", "processed"), kinds)
        self.assertIn(("erasure.refused", "refused"), kinds)
        obj = [d for d in dels if d["type"] == "erasure.object"][0]
        self.assertEqual(obj["lines_removed"], 11)
        self.assertEqual(obj["policy"], "gdpr")

    # ---- 4: the HTML page in a browser

    def test_4_html(self):
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            self.skipTest("chromium not installed (scripts/deps.sh installs it)")
        D = self.D
        out = os.path.join(self.st.dir, "report.html")
        p = self.st.run("report", "retention", f"--as-of={lcutil.rfc3339(D + 8 * DAY + 3 * HOUR)}", "--format=html",
                        f"--output={out}")
        self.assertEqual(p.returncode, 0, p.stderr)
        html = read(out).decode()
        # self-contained: no scripts, no external resources
        for bad in ("<script", "<link", "src=", "url(", "@import", "http://", "https://"):
            for line in html.splitlines():
                if bad in line:
                    self.assertIn('xmlns="http://www.w3.org/2000/svg"', line, bad)
        self.assertLess(html.index('id="summary"'), html.index('id="plot"'))  # summary first
        prof = tempfile.mkdtemp(prefix="strata-chromium-")
        self.addCleanup(shutil.rmtree, prof, True)
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={prof}", "--hide-scrollbars", "--window-size=1200,1600"]
        r = subprocess.run(args + ["--dump-dom", "file://" + out], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        dom = r.stdout
        for text in ("Retention report", "Summary", "No violations", "Bytes per tier over time", "Violations (0)",
                     "GDPR Art. 5(1)(e): storage limitation", "SOX s.802 / SEC 17a-4", "Erasure requests (2)",
                     "Audit trail", "chain intact", 'id="plot"', "<polygon", "STANDARD"):
            self.assertIn(text, dom, text)
        self.assertGreaterEqual(dom.count("<polygon"), 2)  # hot and STANDARD areas
        png = os.path.join(prof, "shot.png")
        r = subprocess.run(args + [f"--screenshot={png}", "file://" + out], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        data = read(png)
        self.assertGreater(len(data), 10000)
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        # decode the PNG's pixels: not blank, and the plot's colours are there
        pos, idat, width, height, ctype = 8, b"", 0, 0, 0
        while pos < len(data):
            n, typ = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + n]
            if typ == b"IHDR":
                width, height, _, ctype = struct.unpack(">IIBB", body[:10])
            elif typ == b"IDAT":
                idat += body
            pos += 12 + n
        raw = zlib.decompress(idat)
        self.assertEqual((width, height), (1200, 1600))
        bpp = 4 if ctype == 6 else 3
        stride = width * bpp + 1
        colors = set()
        prev = bytearray(width * bpp)
        for y in range(height):  # undo the PNG filters to count distinct colours
            f, line = raw[y * stride], bytearray(raw[y * stride + 1:(y + 1) * stride])
            for i in range(len(line)):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    line[i] = (line[i] + a) & 0xFF
                elif f == 2:
                    line[i] = (line[i] + b) & 0xFF
                elif f == 3:
                    line[i] = (line[i] + (a + b) // 2) & 0xFF
                elif f == 4:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            prev = line
            if y % 8 == 0:
                for x in range(0, width, 8):
                    colors.add(bytes(line[x * bpp:x * bpp + 3]))
        self.assertGreater(len(colors), 20, "the screenshot looks blank")

    # ---- 5: violations

    def test_5_violations(self):
        D, st = self.D, self.st
        as_of = D + 8 * DAY + 3 * HOUR
        # an object removed behind Strata's back
        gdpr_key = [k for k in self.bucket() if "/gdpr/" in k][0]
        for v in self.s3.list_object_versions(Bucket=BUCKET, Prefix=gdpr_key).get("Versions", []):
            self.s3.delete_object(Bucket=BUCKET, Key=gdpr_key, VersionId=v["VersionId"])
        rep = self.report(as_of, expect=1)
        self.assertEqual(rep["summary"]["violations"], 1)
        v = rep["violations"][0]
        self.assertEqual((v["kind"], v["key"], v["policy"], v["tier"]),
                         ("missing_object", gdpr_key, "gdpr", "STANDARD"))
        self.assertEqual(v["chunks"], 2)
        self.assertEqual([o["status"] for o in rep["objects"] if o["key"] == gdpr_key], ["missing"])
        self.assertEqual(self.policy(rep, "gdpr")["violations"], 1)
        # a policy shortened in the configuration: gdpr data is now past its deletion date, and sox data sits in
        # STANDARD, which sox no longer lists
        with open(st.cfg) as f:
            cfg = f.read()
        with open(st.cfg, "w") as f:
            f.write(cfg.replace(POLICIES, SHORTENED))
        p = st.run("check-config")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        rep = self.report(as_of, expect=1)
        kinds = sorted(v["kind"] for v in rep["violations"])
        self.assertEqual(kinds, ["missing_object", "past_deletion", "tier_not_allowed"])
        past = [v for v in rep["violations"] if v["kind"] == "past_deletion"][0]
        web = self.times("web")
        self.assertEqual((past["policy"], past["chunks"]), ("gdpr", 2))
        self.assertEqual(past["since"], lcutil.rfc3339(min(b for _, b, _ in web) + 5 * DAY))
        self.assertIn('app="web"', past["stream"])
        tier = [v for v in rep["violations"] if v["kind"] == "tier_not_allowed"][0]
        self.assertEqual((tier["policy"], tier["tier"], tier["chunks"]), ("sox", "STANDARD", 1))
        self.assertIn('app="ledger"', tier["stream"])
        # within the grace period of the new deletion date, nothing is past it yet
        rep = self.report(min(b for _, b, _ in web) + 5 * DAY + HOUR, "--no-object-checks", expect=1)
        self.assertEqual(sorted(v["kind"] for v in rep["violations"]), ["tier_not_allowed"])
        # the CSV carries the violations too; HTML says how many
        out = self.report(as_of, fmt="csv")
        rows = [r for r in csv.DictReader(io.StringIO(out)) if r["record"] == "violation"]
        self.assertEqual(sorted(r["detail"].split(":")[0] for r in rows), kinds)
        html = self.report(as_of, fmt="html")
        self.assertIn("3 violations found", html)
        # a chain break is a violation as well
        seg = os.path.join(st.dir, "data", "audit", "0000000000000001.jsonl")
        orig = read(seg)
        lines = orig.split(b"\n")
        lines[2] = lines[2].replace(b'"entries":', b'"entries":1', 1)
        with open(seg, "wb") as f:
            f.write(b"\n".join(lines))
        try:
            rep = self.report(as_of, "--no-object-checks", expect=1)
            chain = [v for v in rep["violations"] if v["kind"] == "audit_chain"]
            self.assertEqual(len(chain), 1)
            self.assertIn("segment 1 line 4", chain[0]["message"])
            self.assertFalse(rep["audit"]["intact"])
        finally:
            with open(seg, "wb") as f:
                f.write(orig)


class CloudWatchRetentionTest(unittest.TestCase):
    """The groups streams are shipped to keep events no longer than the streams' policy: a group that never
    expires, or keeps them longer than the policy's deletion age, is a violation."""

    def test_retention_against_policy(self):
        import boto3
        logs = boto3.client("logs", endpoint_url=MOTO.url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")
        group = "/strata-report/fake/web"
        lc = ("lifecycle:\n  policies:\n    - name: gdpr\n      legal_basis: GDPR\n      tiers:\n"
              "        - {class: hot, until: 7d}\n      delete_after: 30d\n  rules:\n"
              "    - {selector: '{app=\"web\"}', policy: gdpr}\n"
              f"  cloudwatch:\n    endpoint: {MOTO.url}\n    region: us-east-1\n    ship:\n"
              "      - selector: '{app=\"web\"}'\n        log_group: /strata-report/{tenant}/web\n")
        st = lcutil.Strata(lc)
        self.addCleanup(st.cleanup)
        st.serve()
        now = time.time_ns()
        st.push([({"app": "web"}, [(now - HOUR + i * NS, f"w {i}") for i in range(5)])])
        st.flush()
        st.stop()
        logs.create_log_group(logGroupName=group)

        def report():
            p = st.run("report", "retention", "--format=json")
            self.assertIn(p.returncode, (0, 1), p.stderr)
            rep = json.loads(p.stdout)
            self.assertEqual(rep["cloudwatch"]["error"], "")
            self.assertTrue(rep["cloudwatch"]["checked"])
            g = [x for x in rep["cloudwatch"]["groups"] if x["name"] == group]
            self.assertEqual(len(g), 1, rep["cloudwatch"])
            return p.returncode, rep, g[0]

        rc, rep, g = report()
        self.assertEqual((rc, g["retention_days"], g["policy_days"], g["policy"]), (1, 0, 7, "gdpr"))
        v = [x for x in rep["violations"] if x["kind"] == "cloudwatch_retention"]
        self.assertEqual(len(v), 1)
        self.assertEqual(v[0]["key"], group)
        self.assertIn("forever", v[0]["message"])
        logs.put_retention_policy(logGroupName=group, retentionInDays=14)
        rc, rep, g = report()
        self.assertEqual((rc, g["retention_days"], rep["violations"]), (0, 14, []))
        logs.put_retention_policy(logGroupName=group, retentionInDays=60)
        rc, rep, g = report()
        self.assertEqual(rc, 1)
        self.assertIn("for 60 days", rep["violations"][0]["message"])


if __name__ == "__main__":
    unittest.main()
