"""The audit trail end to end against moto_server (docs/compliance.md).

strata serve ingests and answers queries, `strata lifecycle run --now` uploads to S3 Standard and
`strata audit seal` seals the first segment into the bucket (with Object Lock), so the trail has a sealed
segment and an unsealed tail. `strata audit verify` passes on it, and so does an independent check written
here with hashlib and boto3 only (the procedure an auditor follows). Then every kind of tampering — a
changed, removed, inserted or reordered record, a changed local copy of a sealed segment, a replaced sealed
copy, a corrupted local chunk, an S3 object replaced or removed — makes verify exit non-zero and name the
place; undoing it makes verify pass again. A trail that cannot be written stops deletions (nothing is
deleted without evidence), and the deletion evidence report lists what a run deleted with its record hash.

Run: python3 -m unittest discover -s tests/lifecycle -p 'test_audit*.py'"""
import hashlib
import json
import os
import time
import unittest

import lcutil
from lcutil import DAY, NS

POLICIES = """    - name: gdpr
      legal_basis: "GDPR Art. 5(1)(e)"
      erasable: true
      tiers:
        - {class: hot, until: 7d}
        - {class: STANDARD, until: 30d}
      delete_after: 30d
"""
RULES = """    - {selector: '{retention="gdpr"}', policy: gdpr}
"""
AUDIT = """  audit:
    enabled: true
    object_lock: GOVERNANCE
    retain: 2d
"""
KEYS = ["seq", "time", "type", "actor", "tenant", "details", "prev"]


def rb(path):
    with open(path, "rb") as f:
        return f.read()


def wb(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)

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


def independent_check(local_dir, s3, bucket, prefix):
    """The auditor's procedure with nothing but hashlib: every segment (the sealed copy where there is one),
    in order; each line's prev is the SHA-256 of the line before it; seqs count up from 1; every seal
    record's sha256 is the hash of the segment it names. Returns (records, sealed segments)."""
    local = {int(f[:16], 16): os.path.join(local_dir, f) for f in os.listdir(local_dir) if f.endswith(".jsonl")}
    sealed = {}
    for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "audit/").get("Contents", []):
        name = o["Key"].rsplit("/", 1)[1]
        sealed[int(name[:16], 16)] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    numbers = sorted(set(local) | set(sealed))
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    prev, seq, seg_hash, seals = "0" * 64, 1, {}, []
    for k in numbers:
        data = sealed[k] if k in sealed else rb(local[k])
        seg_hash[k] = hashlib.sha256(data).hexdigest()
        assert data.endswith(b"\n")
        for i, line in enumerate(data.split(b"\n")[:-1]):
            rec = json.loads(line)
            assert list(rec) == KEYS, rec
            assert rec["seq"] == seq and rec["prev"] == prev, (k, i, rec["seq"])
            if i == 0:
                assert rec["type"] == "segment.open" and rec["details"]["segment"] == k
            if rec["type"] == "seal":
                seals.append(rec["details"])
            prev = hashlib.sha256(line).hexdigest()
            seq += 1
    for s in seals:
        assert seg_hash[s["segment"]] == s["sha256"], s
        if s["stored"] == "s3":
            body = s3.get_object(Bucket=bucket, Key=s["key"], VersionId=s["version_id"])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == s["sha256"]
    return seq - 1, len(sealed)


class TamperTest(unittest.TestCase):
    BUCKET = "strata-audit-tamper"

    @classmethod
    def setUpClass(cls):
        cls.s3 = lcutil.boto("s3", MOTO.url)
        cls.s3.create_bucket(Bucket=cls.BUCKET, ObjectLockEnabledForBucket=True)
        cls.st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, cls.BUCKET, POLICIES, RULES, extra=AUDIT))
        st = cls.st
        st.serve()
        cls.D = D = lcutil.day_start(time.time_ns()) - 3 * DAY
        for h in (1, 20):
            values = [(D + h * 3600 * NS + i * NS, f"g{h} {i}") for i in range(30)]
            st.push([({"app": "a", "retention": "gdpr"}, values)])
            st.flush()
        st.push([({"app": "keep"}, [(D + 5 * 3600 * NS + i * NS, f"k {i}") for i in range(40)])])
        st.flush()
        st.lines('{app="a"}', D, D + DAY)
        st.lifecycle(D + 8 * DAY)  # the gdpr chunks go to S3 Standard
        p = st.run("audit", "seal")
        assert p.returncode == 0, p.stderr
        # the unsealed tail: another chunk and a query after the seal
        st.push([({"app": "keep"}, [(D + 6 * 3600 * NS + i * NS, f"k2 {i}") for i in range(40)])])
        st.flush()
        st.lines('{app="keep"}', D, D + DAY)
        time.sleep(1.5)  # the batched query record reaches the trail
        st.stop()
        cls.audit = os.path.join(st.dir, "data", "audit")
        cls.seg1 = os.path.join(cls.audit, "0000000000000001.jsonl")
        cls.seg2 = os.path.join(cls.audit, "0000000000000002.jsonl")

    @classmethod
    def tearDownClass(cls):
        cls.st.cleanup()

    def verify(self, *args):
        p = self.st.run("audit", "verify", "--format=json", *args)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        res = json.loads(p.stdout)
        self.assertEqual(p.returncode, 0 if res["ok"] else 1)
        return res

    def assert_clean(self):
        res = self.verify("--all")
        self.assertTrue(res["ok"], json.dumps(res["findings"], indent=1))
        return res

    def lines(self, path):
        return rb(path).split(b"\n")[:-1]

    def write_lines(self, path, lines):
        wb(path, b"".join(l + b"\n" for l in lines))

    def tamper(self, path, change):
        """Applies change(lines) -> lines to a segment; returns a restorer."""
        orig = rb(path)
        self.write_lines(path, change(self.lines(path)))
        return lambda: wb(path, orig)

    def problem(self, res, kind, segment=None):
        self.assertFalse(res["ok"])
        hits = [f for f in res["findings"] if f["severity"] == "problem" and f["kind"] == kind and
                (segment is None or f.get("segment") == segment)]
        self.assertTrue(hits, json.dumps(res["findings"], indent=1))
        return hits[0]

    def first(self, path, rtype):
        for i, l in enumerate(self.lines(path)):
            if json.loads(l)["type"] == rtype:
                return i, json.loads(l)
        self.fail(f"no {rtype} record in {path}")

    # ---- the untouched trail

    def test_a_untouched(self):
        res = self.assert_clean()
        self.assertEqual(res["trail"]["segments"], 2)
        self.assertEqual(res["trail"]["sealed_segments"], 1)
        self.assertEqual(res["trail"]["seal_records"], 1)
        self.assertTrue(res["chain"]["ok"])
        self.assertEqual(res["objects"]["mode"], "all")
        self.assertEqual(res["objects"]["s3_objects"], 1)
        self.assertEqual(res["objects"]["local_chunks"], 2)
        self.assertEqual(res["objects"]["chunks_checked"], 4)  # 2 local, 2 inside the S3 object
        self.assertEqual(res["objects"]["unaudited_chunks"], 0)
        self.assertEqual(res["objects"]["unaudited_objects"], 0)
        records, sealed = independent_check(self.audit, self.s3, self.BUCKET, "strata/")
        self.assertEqual(records, res["trail"]["records"])
        self.assertEqual(sealed, 1)
        # the sealed copy is locked
        head = self.s3.head_object(Bucket=self.BUCKET, Key="strata/audit/0000000000000001.jsonl")
        self.assertEqual(head["ObjectLockMode"], "GOVERNANCE")
        # what the trail holds
        types = [json.loads(l)["type"] for p in (self.seg1, self.seg2) for l in self.lines(p)]
        for t in ("segment.open", "config.change", "chunk.write", "query", "object.upload", "seal"):
            self.assertIn(t, types)
        _, up = self.first(self.seg1, "object.upload")
        self.assertEqual(up["details"]["class"], "STANDARD")
        self.assertEqual(len(up["details"]["chunk_ids"]), 2)
        _, cw = self.first(self.seg1, "chunk.write")
        self.assertEqual(len(cw["details"]["sha256"]), 64)
        # a sample sized for a confidence is reported
        res = self.verify("--confidence=0.95", "--min-corrupt=0.5", "--seed=7")
        self.assertTrue(res["ok"])
        self.assertEqual(res["objects"]["seed"], 7)
        self.assertEqual(res["objects"]["mode"], "confidence")
        self.assertEqual(res["objects"]["sampled"], 2)  # 3 units, 2 corrupt at 50%: 2 find one with >= 95%

    # ---- records

    def test_changed_record(self):
        i, rec = self.first(self.seg2, "chunk.write")
        self.assertLess(i + 1, len(self.lines(self.seg2)), "a record follows it")
        edit = lambda ls: ls[:i] + [ls[i].replace(b'"entries":40', b'"entries":41')] + ls[i + 1:]  # noqa: E731
        undo = self.tamper(self.seg2, edit)
        try:
            res = self.verify("--chain-only")
            f = self.problem(res, "chain", 2)
            self.assertEqual(f["seq"], rec["seq"] + 1)
            self.assertEqual(f["line"], i + 2)
            self.assertIn(f"seq {rec['seq']} was altered", f["message"])
            self.assertEqual(res["chain"]["break"]["segment"], 2)
        finally:
            undo()
        self.assert_clean()

    def test_removed_record(self):
        i, rec = self.first(self.seg2, "chunk.write")
        undo = self.tamper(self.seg2, lambda ls: ls[:i] + ls[i + 1:])
        try:
            f = self.problem(self.verify("--chain-only"), "chain", 2)
            self.assertEqual(f["seq"], rec["seq"] + 1)
            self.assertIn("1 record(s) missing", f["message"])
        finally:
            undo()
        self.assert_clean()

    def test_inserted_record(self):
        i, rec = self.first(self.seg2, "chunk.write")
        undo = self.tamper(self.seg2, lambda ls: ls[:i + 1] + [ls[i]] + ls[i + 1:])
        try:
            f = self.problem(self.verify("--chain-only"), "chain", 2)
            self.assertEqual(f["line"], i + 2)
            self.assertIn("inserted or records were reordered", f["message"])
        finally:
            undo()
        self.assert_clean()

    def test_reordered_records(self):
        i, rec = self.first(self.seg2, "chunk.write")
        undo = self.tamper(self.seg2, lambda ls: ls[:i - 1] + [ls[i], ls[i - 1]] + ls[i + 1:])
        try:
            f = self.problem(self.verify("--chain-only"), "chain", 2)
            self.assertEqual(f["line"], i)
            self.assertEqual(f["seq"], rec["seq"])
        finally:
            undo()
        self.assert_clean()

    def test_forged_record_with_recomputed_hashes(self):
        """Rewriting a sealed segment's local copy consistently (every later prev recomputed) keeps the
        local chain intact, but not its agreement with the sealed copy."""
        def forge(ls):
            out, prev = [], None
            for l in ls:
                rec = json.loads(l)
                if rec["type"] == "chunk.write":
                    rec["details"]["entries"] += 1
                if prev is not None:
                    rec["prev"] = prev
                l = json.dumps(rec, separators=(",", ":")).encode()
                out.append(l)
                prev = hashlib.sha256(l).hexdigest()
            return out
        undo = self.tamper(self.seg1, forge)
        try:
            res = self.verify("--chain-only")
            f = self.problem(res, "local_copy", 1)
            self.assertGreaterEqual(f["line"], 1)
            self.assertIn("differs from the sealed copy", f["message"])
        finally:
            undo()
        self.assert_clean()

    def test_sealed_copy_replaced(self):
        key = "strata/audit/0000000000000001.jsonl"
        body = self.s3.get_object(Bucket=self.BUCKET, Key=key)["Body"].read()
        forged = body.replace(b'"entries":30', b'"entries":31', 1)
        self.assertNotEqual(forged, body)
        vid = self.s3.put_object(Bucket=self.BUCKET, Key=key, Body=forged)["VersionId"]
        try:
            res = self.verify("--chain-only")
            self.problem(res, "local_copy", 1)
            # the sealed copy read is the forged one: its chain breaks where it was edited
            f = self.problem(res, "chain", 1)
            self.assertIn("was altered", f["message"])
        finally:
            self.s3.delete_object(Bucket=self.BUCKET, Key=key, VersionId=vid)
        self.assert_clean()

    def test_local_segment_removed(self):
        """A sealed segment whose local copy is gone still verifies from the sealed copy (a warning); the
        unsealed tail gone is a break."""
        orig = rb(self.seg1)
        os.unlink(self.seg1)
        try:
            res = self.verify("--chain-only")
            self.assertTrue(res["ok"], res["findings"])
            self.assertTrue([f for f in res["findings"] if f["kind"] == "local_copy" and f["severity"] == "warning"])
        finally:
            wb(self.seg1, orig)
        orig2 = rb(self.seg2)
        os.unlink(self.seg2)
        try:
            res = self.verify("--chain-only")
            # segment 2 held the seal of segment 1: without it segment 1 reads as closed but unsealed
            self.assertEqual(res["trail"]["segments"], 1)
            self.assertTrue([f for f in res["findings"] if f["kind"] == "seal"] or res["trail"]["seal_records"] == 0)
        finally:
            wb(self.seg2, orig2)
        self.assert_clean()

    # ---- stored data

    def test_local_chunk_corrupted(self):
        files = sorted(self.st.local_chunk_files())
        self.assertEqual(len(files), 2)
        path = files[0]
        orig = rb(path)
        bad = bytearray(orig)
        bad[len(bad) // 2] ^= 0x55
        wb(path, bytes(bad))
        rel = os.path.relpath(path, os.path.join(self.st.dir, "data", "chunks"))
        try:
            res = self.verify("--all")
            f = self.problem(res, "chunk")
            self.assertEqual(f["key"], rel)
            msgs = " ".join(x["message"] for x in res["findings"] if x.get("key") == rel)
            self.assertIn("CRC-32", msgs)
            self.assertIn("SHA-256", msgs)
            self.assertIn("recorded at seq", msgs)
            self.assertTrue(res["chain"]["ok"])
        finally:
            wb(path, orig)
        self.assert_clean()

    def test_s3_object_replaced(self):
        objs = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.BUCKET, Prefix="strata/fake/")["Contents"]]
        self.assertEqual(len(objs), 1)
        key = objs[0]
        body = bytearray(self.s3.get_object(Bucket=self.BUCKET, Key=key)["Body"].read())
        body[10] ^= 0xFF
        vid = self.s3.put_object(Bucket=self.BUCKET, Key=key, Body=bytes(body))["VersionId"]
        try:
            f = self.problem(self.verify("--all"), "object")
            self.assertEqual(f["key"], key)
            self.assertIn("replaced the recorded version", f["message"])
        finally:
            self.s3.delete_object(Bucket=self.BUCKET, Key=key, VersionId=vid)
        self.assert_clean()

    def test_z_s3_object_removed(self):
        """Last: the data cannot be put back."""
        key = self.s3.list_objects_v2(Bucket=self.BUCKET, Prefix="strata/fake/")["Contents"][0]["Key"]
        for v in self.s3.list_object_versions(Bucket=self.BUCKET, Prefix=key).get("Versions", []):
            self.s3.delete_object(Bucket=self.BUCKET, Key=key, VersionId=v["VersionId"])
        f = self.problem(self.verify("--all"), "object")
        self.assertEqual(f["key"], key)
        self.assertIn("missing", f["message"])


class DeletionEvidenceTest(unittest.TestCase):
    """Deletions at the end of retention are recorded before the index forgets the data; without a
    writable trail the run deletes nothing."""

    BUCKET = "strata-audit-deletions"

    def test_deletion_needs_a_trail(self):
        s3 = lcutil.boto("s3", MOTO.url)
        s3.create_bucket(Bucket=self.BUCKET)
        s3.put_bucket_versioning(Bucket=self.BUCKET, VersioningConfiguration={"Status": "Enabled"})
        st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, self.BUCKET, POLICIES, RULES, extra=AUDIT.replace(
            "    object_lock: GOVERNANCE\n    retain: 2d\n", "")))
        self.addCleanup(st.cleanup)
        st.serve()
        D = lcutil.day_start(time.time_ns()) - 3 * DAY
        st.push([({"app": "d", "retention": "gdpr"}, [(D + 3600 * NS + i * NS, f"d {i}") for i in range(25)])])
        st.flush()
        st.stop()
        st.lifecycle(D + 8 * DAY)
        key = s3.list_objects_v2(Bucket=self.BUCKET)["Contents"][0]["Key"]
        # an unreadable last record: the trail refuses appends, so the run deletes nothing
        seg = os.path.join(st.dir, "data", "audit", "0000000000000001.jsonl")
        orig = rb(seg)
        wb(seg, b'{"seq":"garbage"}\n', "ab")
        p = st.lifecycle(D + 40 * DAY, expect=None)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("audit", p.stderr)
        self.assertEqual([o["Key"] for o in s3.list_objects_v2(Bucket=self.BUCKET).get("Contents", [])], [key])
        # repaired: the run deletes, and the evidence names the object, its version and the rule
        wb(seg, orig)
        st.lifecycle(D + 40 * DAY)
        self.assertEqual(s3.list_objects_v2(Bucket=self.BUCKET).get("KeyCount"), 0)
        p = st.run("report", "deletions", f"--from={lcutil.rfc3339(D)}", f"--to={lcutil.rfc3339(D + 41 * DAY)}")
        self.assertEqual(p.returncode, 0, p.stderr)
        rep = json.loads(p.stdout)
        self.assertEqual(rep["audit_chain"], "intact")
        self.assertEqual(rep["count"], 1)
        d = rep["deletions"][0]
        self.assertEqual(d["type"], "delete.retention")
        self.assertEqual(d["kind"], "object")
        self.assertEqual(d["keys"], [key])
        self.assertEqual(len(d["version_ids"]), 1)
        self.assertEqual(d["policy"], "gdpr")
        self.assertEqual(d["rule"], "delete_after 30d")
        self.assertEqual(d["legal_basis"], "GDPR Art. 5(1)(e)")
        self.assertEqual(d["streams"], ['{app="d", retention="gdpr", service_name="d"}'])
        self.assertEqual(d["time"], lcutil.rfc3339(D + 40 * DAY))
        self.assertEqual(d["data_from"], lcutil.rfc3339(D + 3600 * NS))
        # the row's hash is the record's hash in the trail
        lines = [l for f in sorted(os.listdir(os.path.join(st.dir, "data", "audit"))) if f.endswith(".jsonl")
                 for l in rb(os.path.join(st.dir, "data", "audit", f)).split(b"\n")[:-1]]
        rec = [l for l in lines if json.loads(l)["seq"] == d["seq"]][0]
        self.assertEqual(hashlib.sha256(rec).hexdigest(), d["record_sha256"])
        # CSV carries the same row
        p = st.run("report", "deletions", f"--from={lcutil.rfc3339(D)}", f"--to={lcutil.rfc3339(D + 41 * DAY)}",
                   "--format=csv")
        rows = p.stdout.strip().splitlines()
        self.assertEqual(len(rows), 2)
        self.assertIn(key, rows[1])
        self.assertIn(d["record_sha256"], rows[1])
        # out of range: nothing
        p = st.run("report", "deletions", f"--from={lcutil.rfc3339(D)}", f"--to={lcutil.rfc3339(D + 39 * DAY)}")
        self.assertEqual(json.loads(p.stdout)["count"], 0)


class ConfigChangeTest(unittest.TestCase):
    """The effective lifecycle configuration is recorded when it changes, not at every start."""

    def test_config_change(self):
        st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, "strata-audit-config", POLICIES, RULES, extra=AUDIT))
        self.addCleanup(st.cleanup)
        lcutil.boto("s3", MOTO.url).create_bucket(Bucket="strata-audit-config", ObjectLockEnabledForBucket=True)
        audit = os.path.join(st.dir, "data", "audit")

        def changes():
            out = []
            for f in sorted(os.listdir(audit)):
                if f.endswith(".jsonl"):
                    out += [json.loads(l) for l in rb(os.path.join(audit, f)).split(b"\n")[:-1]]
            return [r["details"] for r in out if r["type"] == "config.change"]

        for _ in range(2):
            self.assertEqual(st.run("audit", "seal").returncode, 0)
        self.assertEqual(len(changes()), 1)
        first = changes()[0]
        self.assertEqual(first["previous_sha256"], "")
        self.assertEqual(first["effective"]["policies"][0]["delete_after"], "30d")
        self.assertEqual(first["effective"]["policies"][0]["legal_basis"], "GDPR Art. 5(1)(e)")
        self.assertEqual(first["effective"]["audit"]["object_lock"], "GOVERNANCE")
        with open(st.cfg) as f:
            cfg = f.read()
        with open(st.cfg, "w") as f:
            f.write(cfg.replace("delete_after: 30d", "delete_after: 60d"))
        self.assertEqual(st.run("audit", "seal").returncode, 0)
        c = changes()
        self.assertEqual(len(c), 2)
        self.assertEqual(c[1]["previous_sha256"], first["sha256"])
        self.assertEqual(c[1]["effective"]["policies"][0]["delete_after"], "60d")
        # whitespace and comments are not a change
        with open(st.cfg, "a") as f:
            f.write("# a comment\n")
        self.assertEqual(st.run("audit", "seal").returncode, 0)
        self.assertEqual(len(changes()), 2)
        p = st.run("audit", "verify", "--chain-only", "--format=json")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class RestoreDrillTest(unittest.TestCase):
    """`strata audit restore-test`: a sample of each archive class is restored, timed, read back and
    recorded; the retention report shows the latest drill per class."""

    BUCKET = "strata-audit-drill"

    def test_drill(self):
        s3 = lcutil.boto("s3", MOTO.url)
        s3.create_bucket(Bucket=self.BUCKET)
        s3.put_bucket_versioning(Bucket=self.BUCKET, VersioningConfiguration={"Status": "Enabled"})
        pol = """    - name: cold
      tiers:
        - {class: hot, until: 7d}
        - {class: GLACIER, until: 100d}
      delete_after: 100d
"""
        rules = "    - {selector: '{app=~\"c.+\"}', policy: cold}\n"
        st = lcutil.Strata(lcutil.lifecycle_yaml(MOTO.url, self.BUCKET, pol, rules,
                                                 extra="  audit:\n    enabled: true\n"))
        self.addCleanup(st.cleanup)
        st.serve()
        D = lcutil.day_start(time.time_ns()) - 3 * DAY
        for h in (1, 2):
            st.push([({"app": f"c{h}"}, [(D + h * 3600 * NS + i * NS, f"c {i}") for i in range(15)])])
        st.flush()
        st.stop()
        st.lifecycle(D + 9 * DAY)
        objs = lcutil.list_versions(s3, self.BUCKET)
        self.assertEqual([v[0][1] for v in objs.values()], ["GLACIER"])
        key = list(objs)[0]
        # verify: the archived object can only be checked for existence, size and class
        p = st.run("audit", "verify", "--all", "--format=json")
        res = json.loads(p.stdout)
        self.assertTrue(res["ok"], res["findings"])
        self.assertEqual(res["objects"]["archived_not_read"], 1)
        p = st.run("audit", "restore-test", "--per-tier=3", "--poll=200ms", "--timeout=60s", "--tier=Bulk",
                   "--format=json", "--seed=1")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        drill = json.loads(p.stdout)
        self.assertTrue(drill["ok"])
        self.assertEqual(drill["retrieval_tier"], "Bulk")
        self.assertEqual(len(drill["objects"]), 1)  # one archived object exists
        o = drill["objects"][0]
        self.assertEqual((o["key"], o["class"], o["outcome"], o["recorded"]), (key, "GLACIER", "ok", True))
        self.assertGreaterEqual(o["seconds"], 0)
        self.assertGreater(o["bytes"], 0)
        # recorded in the trail and shown by the report
        rep = json.loads(st.run("report", "retention", f"--as-of={lcutil.rfc3339(D + 9 * DAY)}").stdout)
        self.assertEqual(len(rep["retrievability"]), 1)
        r = rep["retrievability"][0]
        self.assertEqual((r["class"], r["outcome"], r["key"]), ("GLACIER", "ok", key))
        self.assertAlmostEqual(r["seconds"], o["seconds"], places=2)
        # the restored copy is readable: verify now reads it whole
        res = json.loads(st.run("audit", "verify", "--all", "--format=json").stdout)
        self.assertTrue(res["ok"], res["findings"])
        self.assertEqual(res["objects"]["archived_not_read"], 0)
        self.assertEqual(res["objects"]["chunks_checked"], 2)
        # a missing archived object fails the drill
        for v in s3.list_object_versions(Bucket=self.BUCKET, Prefix=key).get("Versions", []):
            s3.delete_object(Bucket=self.BUCKET, Key=key, VersionId=v["VersionId"])
        p = st.run("audit", "restore-test", "--poll=200ms", "--timeout=10s", "--format=json")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertNotEqual(json.loads(p.stdout)["objects"][0]["outcome"], "ok")


if __name__ == "__main__":
    unittest.main()
