"""Helpers shared by the objstore Python tests: locating strata-s3-selftest, free ports, running the
selftest with a clean environment, and starting moto_server."""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# rc values of objstore/objstore.h and common/err.h
ST_ENOTFOUND = -10000
ST_ETIMEOUT = -9992
ST_S3_EARCHIVED = -10100
ST_S3_ERESTORING = -10099
ST_S3_EACCESS = -10098
ST_S3_EAUTH = -10097
ST_S3_ECHECKSUM = -10096
ST_S3_EUNAVAILABLE = -10093
ST_S3_ENETWORK = -10092


def selftest_path():
    env = os.environ.get("STRATA_S3_SELFTEST")
    if env:
        return env
    for d in ("build-s3", "build", "build-s3-asan", "build-asan"):
        p = os.path.join(REPO, d, "objstore", "strata-s3-selftest")
        if os.access(p, os.X_OK):
            return p
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def base_env(**extra):
    """An environment without the caller's AWS settings, so the credential chain sees only ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.startswith("STRATA_S3_")}
    env.update({
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "STRATA_LOG_LEVEL": "error",
    })
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        env.pop(k, None)
    return env


def run(env, *args, timeout=120):
    """Runs strata-s3-selftest and returns its JSON result (dict)."""
    p = subprocess.run([selftest_path(), *map(str, args)], env=env, capture_output=True, text=True,
                       timeout=timeout)
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        res = json.loads(line)
    except ValueError:
        raise AssertionError(f"selftest {args} printed no JSON: stdout={p.stdout!r} stderr={p.stderr[-2000:]!r}")
    res["_stderr"] = p.stderr
    if (p.returncode == 0) != (res.get("rc") == 0):
        raise AssertionError(f"exit status {p.returncode} disagrees with {res}")
    return res


class Moto:
    """moto_server on 127.0.0.1:<free port>, stopped by stop()."""

    def __init__(self):
        self.exe = shutil.which("moto_server")
        self.proc = None
        self.port = None

    def start(self):
        if self.exe is None:
            return False
        self.port = free_port()
        self.log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"moto-{self.port}.log"), "w")
        self.proc = subprocess.Popen([self.exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/moto-api/", timeout=1).read()
                return True
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("moto_server did not answer within 30 s")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
