#!/usr/bin/env python3
# gen_ingest_corpus.py: writes the seed corpora of the pushproto, otlp and labels fuzz targets
# (tests/fuzz/corpus/<name>/). Protobuf bytes are assembled here with a tiny encoder, snappy blocks
# are literal-only, zstd/lz4 seeds use the zstd and lz4 command-line tools when present.
# Usage: tests/fuzz/gen_ingest_corpus.py   (idempotent; rewrites the seed files it owns)
import os
import shutil
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fld(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def s(num, text):
    return fld(num, 2, text.encode() if isinstance(text, str) else text)


def u(num, v):
    return fld(num, 0, varint(v))


def fixed64(num, v):
    return fld(num, 1, v.to_bytes(8, "little"))


def fixed32(num, v):
    return fld(num, 5, v.to_bytes(4, "little"))


def snappy_literal(data):
    """A valid snappy block made only of literals."""
    out = bytearray(varint(len(data)))
    i = 0
    while i < len(data):
        chunk = data[i:i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
        i += len(chunk)
    return bytes(out)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- pushproto ----------------------------------------------------------------------------------
def ts(sec, nanos=0):
    return u(1, sec) + (u(2, nanos) if nanos else b"")


def entry(sec, nanos, line, md=(), parsed=()):
    e = s(1, ts(sec, nanos)) + s(2, line)
    for k, v in md:
        e += s(3, s(1, k) + s(2, v))
    for k, v in parsed:
        e += s(4, s(1, k) + s(2, v))
    return e


def stream(labels, entries, h=None):
    out = s(1, labels)
    for e in entries:
        out += s(2, e)
    if h is not None:
        out += u(3, h)
    return out


def push(*streams):
    return b"".join(s(1, st) for st in streams)


NOW = 1724240000
basic = push(stream('{job="api", env="prod"}', [entry(NOW, 1, "level=info msg=hello"),
                                               entry(NOW, 2, '{"level":"error","msg":"x"}', md=[("trace_id", "abc")])]))
seeds = {
    "raw_basic": (0x07, basic),
    "raw_two_streams": (0x03, push(stream('{app="a"}', [entry(NOW, 0, "one")]),
                                   stream('{app="a"}', [entry(NOW, 5, "two", md=[("k", ""), ("x", "y")])], h=42))),
    "raw_bad_labels": (0x01, push(stream('{job="a"', [entry(NOW, 0, "l")]))),
    "raw_bad_ts": (0x01, push(stream('{job="a"}', [entry(253402300800, 0, "l")]))),
    "raw_bad_nanos": (0x01, push(stream('{job="a"}', [s(1, u(1, NOW) + u(2, (1 << 64) - 1)) + s(2, "l")]))),
    "raw_no_ts": (0x05, push(stream('{job="a"}', [s(2, "no timestamp")]))),
    "raw_parsed_format": (0x07, push(stream('{job="a", level="WARN"}', [entry(NOW, 0, "l", parsed=[("p", "q")])]))
                          + s(2, "loki")),
    "raw_empty": (0x01, b""),
    "raw_long_line": (0x09, push(stream('{job="a"}', [entry(NOW, 0, "x" * 400)]))),
    "snappy_basic": (0x06, snappy_literal(basic)),
    "snappy_corrupt": (0x00, b"\x0a\x10ab"),
    "snappy_huge_len": (0x00, b"\xff\xff\xff\xff\x0f\x00"),
    "snappy_empty_req": (0x00, b"\x00"),
}
for name, (mode, data) in seeds.items():
    write("pushproto", name, bytes([mode]) + data)

# ---- otlp ---------------------------------------------------------------------------------------
def any_str(v):
    return s(1, v)


def any_int(v):
    return u(3, v)


def any_kvlist(*kvs):
    return s(6, b"".join(s(1, kv) for kv in kvs))


def any_arr(*vals):
    return s(5, b"".join(s(1, v) for v in vals))


def kv(k, anyv):
    return s(1, k) + s(2, anyv)


def record(t=0, obs=0, sev=0, sevtext="", body=None, attrs=(), trace=b"", span=b"", flags=0, event=""):
    r = b""
    if t:
        r += fixed64(1, t)
    if sev:
        r += u(2, sev)
    if sevtext:
        r += s(3, sevtext)
    if body is not None:
        r += s(5, body)
    for a in attrs:
        r += s(6, a)
    if flags:
        r += fixed32(8, flags)
    if trace:
        r += s(9, trace)
    if span:
        r += s(10, span)
    if obs:
        r += fixed64(11, obs)
    if event:
        r += s(12, event)
    return r


def export(resource_attrs, records, scope=b""):
    res = b"".join(s(1, a) for a in resource_attrs)
    sl = (s(1, scope) if scope else b"") + b"".join(s(2, r) for r in records)
    rl = s(1, res) + s(2, sl)
    return s(1, rl)


T0 = NOW * 10**9
otlp_pb = export([kv("service.name", any_str("checkout")), kv("k8s.pod.name", any_str("p1")),
                  kv("host.name", any_str("h")), kv("cloud", any_kvlist(kv("region", any_str("eu"))))],
                 [record(T0, T0 + 1, 13, "WARN", any_str("payment failed"), [kv("user.id", any_int(42))],
                         bytes(range(1, 17)), bytes(range(1, 9)), 1, "evt"),
                  record(0, T0 + 5, 0, "", any_kvlist(kv("b", any_int(1)), kv("a", any_arr(any_str("x"), u(2, 1))))),
                  record(0, 0, 9, "", fld(4, 1, struct.pack("<d", 1.5)))],
                 scope=s(1, "io.x") + s(2, "1.0") + s(3, kv("sa", any_str("v"))) + u(4, 2))
json_basic = ('{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}},'
              '{"key":"k8s.namespace.name","value":{"stringValue":"ns"}},{"key":"host","value":{"kvlistValue":'
              '{"values":[{"key":"name","value":{"stringValue":"h1"}}]}}}]},"scopeLogs":[{"scope":{"name":"sc",'
              '"version":"1"},"logRecords":[{"timeUnixNano":"1724240000000000000","observedTimeUnixNano":'
              '"1724240000000000001","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"boom"},'
              '"attributes":[{"key":"n","value":{"intValue":"5"}},{"key":"d","value":{"doubleValue":1.5}},'
              '{"key":"b","value":{"bytesValue":"AP8="}},{"key":"t","value":{"boolValue":true}}],'
              '"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","flags":1,'
              '"eventName":"e"},{"body":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"}]}}}]}]}]}')
json_snake = ('{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":5,"severity_number":'
              '"SEVERITY_NUMBER_INFO2","body":{"string_value":"x"}}]}]}]}')
otlp_seeds = {
    "pb_basic": (0x0C, otlp_pb),
    "pb_no_service": (0x04, export([kv("k8s.container.name", any_str("c"))], [record(T0, 0, 0, "", any_str("l"))])),
    "pb_custom_index": (0x1C, export([kv("a", any_kvlist(kv("b", any_str("x")))), kv("a.b", any_str("y"))],
                                     [record(T0, body=any_str("level=warn"))])),
    "pb_deep": (0x00, export([kv("d", any_kvlist(kv("e", any_kvlist(kv("f", any_kvlist(kv("g", any_str("x"))))))))],
                             [record(T0, body=any_str("x"))])),
    "pb_bad_trace": (0x00, export([], [record(T0, trace=b"abc")])),
    "pb_empty": (0x00, b""),
    "json_basic": (0x0D, json_basic.encode()),
    "json_snake": (0x0D, json_snake.encode()),
    "json_empty": (0x01, b'{"resourceLogs":[]}'),
    "json_bad": (0x01, b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}'),
}
for name, (mode, data) in otlp_seeds.items():
    write("otlp", name, bytes([mode]) + data)
for tool, name in (("zstd", "zstd_pb"), ("lz4", "lz4_pb")):
    if shutil.which(tool):
        comp = subprocess.run([tool, "-c", "-q"], input=otlp_pb, stdout=subprocess.PIPE, check=True).stdout
        write("otlp", name, bytes([0x02]) + comp)

# ---- labels -------------------------------------------------------------------------------------
label_seeds = {
    "basic": '{job="api"}',
    "two": '{job="api", env="prod"}',
    "unsorted_nospace": '{z="1",a="2"}',
    "escapes": '{a="q\\"b\\\\s\\n\\t\\x41\\101\\u00e9\\U0001F600"}',
    "empty_value": '{a="", b="x"}',
    "dup": '{a="1", a="2"}',
    "empty": "{}",
    "spaces": ' { a = "b" , c = "d" } ',
    "bad_unterminated": '{a="b"',
    "bad_name": '{1a="b"}',
    "bad_op": '{a=~"b"}',
    "otlp_dots": "service.name",
    "otlp_reserved": "__meta.x__",
    "otlp_digit": "123abc",
    "otlp_utf8": "n\u00e4me",
    "level_json": '{"level":"warn","msg":"x"}',
    "level_logfmt": "ts=1 lvl=ERR msg=\"disk full\"",
    "service": '{app="a", level="info"}',
}
for name, text in label_seeds.items():
    write("labels", name, text.encode())
