#!/usr/bin/env python3
"""lifecycle_bench.py: lifecycle throughput against moto_server and the request count and cost per GB
of each tier, next to a naive plan that stores one object per chunk.

  python3 tests/bench/lifecycle_bench.py [--lines 1000000] [--streams 128] [--small-pack 1MiB]

1. strata serve ingests --lines real log lines (strata-loadgen: the loghub samples when ../shared is
   there, else generated lines) into --streams streams and flushes them into chunks.
2. `strata lifecycle run --now=+2d` uploads every chunk to S3 STANDARD, cut into objects of
   --small-pack (an hourly worker uploads about one object per hour and stream group; a small pack
   size stands in for that): MB/s uploaded, requests.
3. `strata lifecycle run --now=+31d` repacks those objects into GLACIER objects of pack_target_size
   (64 MiB): MB/s packed (read back from S3, checked, written), requests.
4. `--now=+366d`: GLACIER -> DEEP_ARCHIVE (a restore, then a server-side copy).
Prints one table; the numbers go into docs/performance.md. moto_server keeps objects in memory in a
Python process, so the MB/s are moto's as much as Strata's: they are a floor, not AWS figures."""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lifecycle"))
import lcutil  # noqa: E402
from lcutil import DAY, NS  # noqa: E402

PRICES = {  # us-east-1 list prices (docs/lifecycle.md): storage $/GB-month, PUT/transition $/1000
    "STANDARD": (0.023, 0.005),
    "GLACIER": (0.004, 0.03),
    "DEEP_ARCHIVE": (0.00099, 0.05),
}
OVERHEAD_ARCHIVE = 32 * 1024  # billed at the archive rate per object
OVERHEAD_STD = 8 * 1024       # billed at the STANDARD rate per object
GB = 1024 ** 3


def policy_yaml(url, pack):
    return lcutil.lifecycle_yaml(url, "strata-bench", """    - name: archive
      tiers:
        - {class: hot, until: 1d}
        - {class: STANDARD, until: 30d}
        - {class: GLACIER, until: 365d}
        - {class: DEEP_ARCHIVE, until: 2557d}
      delete_after: 2557d
""", "    []\n", extra="  default_policy: archive\n", pack=pack)


def run(st, now, cfg):
    t = time.monotonic()
    p = subprocess.run([lcutil.strata_bin(), "lifecycle", "run", f"--now={lcutil.rfc3339(now)}", "--quiet",
                        f"-config.file={cfg}"], capture_output=True, text=True, env=st.env(), timeout=3600)
    dt = time.monotonic() - t
    if p.returncode != 0:
        sys.exit(f"lifecycle run failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    m = re.search(r"done: (\d+) objects written, (\d+) deleted, (\d+) requests", p.stdout)
    plan = re.search(r"plan: (\d+) chunks \((\d+) bytes\)", p.stdout)
    return dt, int(m.group(1)), int(m.group(3)), int(plan.group(1)), int(plan.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--streams", type=int, default=128)
    ap.add_argument("--small-pack", default="1MiB")
    a = ap.parse_args()
    if not lcutil.have_moto():
        sys.exit("moto_server and boto3 are needed (scripts/test.sh installs them)")
    moto = lcutil.s3util.Moto()
    moto.start()
    try:
        s3 = lcutil.boto("s3", moto.url)
        s3.create_bucket(Bucket="strata-bench")
        s3.put_bucket_versioning(Bucket="strata-bench", VersioningConfiguration={"Status": "Enabled"})
        st = lcutil.Strata(policy_yaml(moto.url, a.small_pack))
        big_cfg = os.path.join(st.dir, "big.yaml")
        with open(st.cfg) as f:
            base = f.read()
        with open(big_cfg, "w") as f:
            f.write(base.replace(f"pack_target_size: {a.small_pack}", "pack_target_size: 64MiB"))
        st.serve()
        loadgen = os.path.join(os.path.dirname(lcutil.strata_bin()), "..", "tests", "bench", "strata-loadgen")
        hosts = 8
        jobs = max(1, a.streams // hosts)
        p = subprocess.run([loadgen, "-port", str(st.port), "-lines", str(a.lines), "-jobs", str(jobs), "-hosts",
                            str(hosts)], capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(p.stderr)
        raw = int(re.search(r"raw_bytes=(\d+)", p.stdout + p.stderr).group(1))
        st.flush()
        st.stop()
        now = time.time_ns()
        up_t, up_objs, up_req, nchunks, cbytes = run(st, now + 2 * DAY, st.cfg)
        gl_t, gl_objs, gl_req, _, _ = run(st, now + 31 * DAY, big_cfg)
        run(st, now + 366 * DAY, big_cfg)  # restore requested
        da_t, da_objs, da_req, _, _ = run(st, now + 367 * DAY, big_cfg)
        vers = lcutil.list_versions(s3, "strata-bench")
        final = {c for v in vers.values() for _, c, _ in v}
        gbytes = cbytes / GB
        mb = cbytes / 1e6

        def per_gb(n):
            return n / gbytes if gbytes else 0

        print(f"data: {a.lines} lines, {raw / 1e6:.1f} MB raw, {nchunks} chunks, {mb:.1f} MB compressed "
              f"(1/{raw / cbytes:.1f}), {a.streams} streams")
        print(f"upload hot -> STANDARD:   {mb / up_t:7.1f} MB/s, {up_objs} objects, {up_req} requests "
              f"({per_gb(up_req):.0f}/GB)")
        print(f"repack -> GLACIER:        {mb / gl_t:7.1f} MB/s, {up_objs} objects into {gl_objs}, {gl_req} requests "
              f"({per_gb(gl_req):.0f}/GB)")
        print(f"GLACIER -> DEEP_ARCHIVE:  {mb / da_t:7.1f} MB/s (server-side copy), {da_req} requests")
        print(f"final classes in the bucket: {sorted(final)}; objects: {len(vers)}")
        print()
        print("per GB stored, us-east-1 list prices    strata (packed)        naive (one object per chunk)")
        ch_per_gb = per_gb(nchunks)
        for tier, objs in (("STANDARD", up_objs), ("GLACIER", gl_objs), ("DEEP_ARCHIVE", max(gl_objs, 1))):
            storage, put = PRICES[tier]
            o_per_gb = per_gb(objs)
            ov = (lambda n: n * (OVERHEAD_ARCHIVE / GB * storage + OVERHEAD_STD / GB * PRICES["STANDARD"][0])
                  if tier != "STANDARD" else 0)
            print(f"  {tier:<13} requests/GB        {o_per_gb:10.1f}             {ch_per_gb:10.1f}")
            print(f"  {tier:<13} one-time $/GB      {o_per_gb * put / 1000:10.5f}             "
                  f"{ch_per_gb * put / 1000:10.5f}")
            print(f"  {tier:<13} storage $/GB-month {storage + ov(o_per_gb):10.5f}             "
                  f"{storage + ov(ch_per_gb):10.5f}")
        st.cleanup()
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
