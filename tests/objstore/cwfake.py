"""A scripted in-memory CloudWatch Logs server (stdlib http.server) for the fault tests of the CloudWatch
client (tests/objstore/test_cw_faults.py) and of the lifecycle's CloudWatch step
(tests/lifecycle/test_cloudwatch.py). It speaks the JSON 1.1 protocol (POST /, X-Amz-Target:
Logs_20140328.<Op>) for the operations Strata uses. Each request whose operation matches the head of the
script pops that action: "throttle" (400 ThrottlingException), "503" (ServiceUnavailableException),
"500", "aborted" (OperationAbortedException), "invalid" (InvalidParameterException), "auth"
(UnrecognizedClientException), "seqtoken" (InvalidSequenceTokenException with an expected token),
"already" (DataAlreadyAcceptedException), "notfound" (ResourceNotFoundException), "reset" (connection
reset), "reject" (the events are stored minus the first and last one, reported in
rejectedLogEventsInfo), or "ok"."""
import http.server
import json
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import s3util  # noqa: E402  (free ports, locating binaries)


def cw_selftest_path():
    env = os.environ.get("STRATA_CW_SELFTEST")
    if env:
        return env
    s3 = os.environ.get("STRATA_S3_SELFTEST")
    if s3:
        p = os.path.join(os.path.dirname(s3), "strata-cw-selftest")
        if os.access(p, os.X_OK):
            return p
    for d in ("build", "build-h9", "build-s3", "build-asan"):
        p = os.path.join(s3util.REPO, d, "objstore", "strata-cw-selftest")
        if os.access(p, os.X_OK):
            return p
    return None


class FakeLogs:
    def __init__(self):
        self.lock = threading.Lock()
        self.script = []  # [(op or "*", action)]
        self.requests = []  # [(op, body dict, headers dict)]
        self.groups = {}  # name -> {"retention": int|None, "streams": {name: [(ts, message)]}}
        self.page_size = 10000
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, script=()):
        with self.lock:
            self.script = list(script)
            self.requests = []
            self.groups = {}
            self.page_size = 10000

    def ops(self, op=None):
        with self.lock:
            return [r for r in self.requests if op is None or r[0] == op]

    def events(self, group, stream):
        with self.lock:
            return list(self.groups.get(group, {}).get("streams", {}).get(stream, []))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode() if obj is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", "req-%d" % len(fake.requests))
                self.end_headers()
                self.wfile.write(body)

            def error(self, status, code, extra=None):
                obj = {"__type": "com.amazonaws.logs#" + code, "message": "scripted " + code}
                obj.update(extra or {})
                self.reply(status, obj)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                op = (self.headers.get("X-Amz-Target") or "").split(".")[-1]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    return self.error(400, "SerializationException")
                with fake.lock:
                    fake.requests.append((op, body, dict(self.headers)))
                    action = "ok"
                    if fake.script and fake.script[0][0] in (op, "*"):
                        action = fake.script.pop(0)[1]
                simple = {"throttle": (400, "ThrottlingException"), "503": (503, "ServiceUnavailableException"),
                          "500": (500, "InternalFailure"), "aborted": (400, "OperationAbortedException"),
                          "invalid": (400, "InvalidParameterException"), "auth": (400, "UnrecognizedClientException"),
                          "notfound": (400, "ResourceNotFoundException"),
                          "already": (400, "DataAlreadyAcceptedException")}
                if action in simple:
                    return self.error(*simple[action])
                if action == "seqtoken" and "sequenceToken" not in body:
                    return self.error(400, "InvalidSequenceTokenException", {"expectedSequenceToken": "tok-1"})
                if action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                return self.op(op, body, action)

            def op(self, op, b, action):
                with fake.lock:
                    groups = fake.groups
                    g = groups.get(b.get("logGroupName"))
                    if op == "CreateLogGroup":
                        if g is not None:
                            return self.error(400, "ResourceAlreadyExistsException")
                        groups[b["logGroupName"]] = {"retention": None, "streams": {}}
                        return self.reply(200, None)
                    if op == "DescribeLogGroups":
                        names = sorted(n for n in groups if n.startswith(b.get("logGroupNamePrefix", "")))
                        out = []
                        for n in names:
                            d = {"logGroupName": n, "creationTime": 1, "storedBytes": 0}
                            if groups[n]["retention"]:
                                d["retentionInDays"] = groups[n]["retention"]
                            out.append(d)
                        return self.reply(200, {"logGroups": out})
                    if g is None:
                        return self.error(400, "ResourceNotFoundException")
                    if op == "CreateLogStream":
                        if b["logStreamName"] in g["streams"]:
                            return self.error(400, "ResourceAlreadyExistsException")
                        g["streams"][b["logStreamName"]] = []
                        return self.reply(200, None)
                    if op == "PutRetentionPolicy":
                        g["retention"] = b["retentionInDays"]
                        return self.reply(200, None)
                    if op == "DeleteRetentionPolicy":
                        g["retention"] = None
                        return self.reply(200, None)
                    if op == "DescribeLogStreams":
                        names = sorted(n for n in g["streams"] if n.startswith(b.get("logStreamNamePrefix", "")))
                        return self.reply(200, {"logStreams": [{"logStreamName": n} for n in names]})
                    s = g["streams"].get(b.get("logStreamName"))
                    if s is None:
                        return self.error(400, "ResourceNotFoundException")
                    if op == "PutLogEvents":
                        evs = b["logEvents"]
                        ts = [e["timestamp"] for e in evs]
                        if ts != sorted(ts):
                            return self.error(400, "InvalidParameterException")
                        if action == "reject" and len(evs) >= 3:
                            s.extend((e["timestamp"], e["message"]) for e in evs[1:-1])
                            return self.reply(200, {"nextSequenceToken": "1", "rejectedLogEventsInfo": {
                                "tooOldLogEventEndIndex": 0, "tooNewLogEventStartIndex": len(evs) - 1}})
                        s.extend((e["timestamp"], e["message"]) for e in evs)
                        return self.reply(200, {"nextSequenceToken": str(len(s))})
                    if op == "GetLogEvents":
                        sel = sorted((e for e in s if e[0] >= b.get("startTime", 0) and
                                      ("endTime" not in b or e[0] < b["endTime"])), key=lambda e: e[0])
                        tok = b.get("nextToken")
                        start = int(tok[2:]) if tok else 0
                        page = sel[start:start + min(fake.page_size, b.get("limit") or 10000)]
                        nxt = "f/%d" % (start + len(page))
                        return self.reply(200, {"events": [{"timestamp": t, "message": m, "ingestionTime": t}
                                                           for t, m in page],
                                                "nextForwardToken": nxt, "nextBackwardToken": "b/%d" % start})
                return self.error(400, "UnknownOperationException")

        return H
