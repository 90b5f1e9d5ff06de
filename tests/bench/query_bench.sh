#!/usr/bin/env bash
# query_bench.sh: the LogQL query benchmark (not a test) over >= 1 GB of raw logs spread over 24 hours
# (loghub samples from ../shared/data/loghub when present, else generated lines; 16 jobs x 8 hosts),
# then a selective selector over 100,000 streams. Prints time, GB/s of raw line bytes and lines/s per
# query (best of 3, warm), the selector -> chunk refs time measured in-process by strata-index-bench,
# and peak RSS. Usage: tests/bench/query_bench.sh [lines 7500000]
set -euo pipefail
cd "$(dirname "$0")/../.."
LINES=${1:-7500000}
BIN=${STRATA_BIN:-build/server/strata}
LOADGEN=${LOADGEN:-build/tests/bench/strata-loadgen}
INDEXBENCH=${INDEXBENCH:-build/tests/bench/strata-index-bench}
LOGHUB=${LOGHUB:-../shared/data/loghub}
[ -x "$BIN" ] && [ -x "$LOADGEN" ] && [ -x "$INDEXBENCH" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/strata-qbench.XXXXXX)
PID=
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_server() { # data dir
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$BIN" serve -common.path_prefix="$1" -server.http_listen_port="$PORT" -server.log_level=warn \
    -limits_config.max_query_length=0s -limits_config.ingestion_rate_mb=100000 \
    -limits_config.ingestion_burst_size_mb=100000 -limits_config.per_stream_rate_limit=10GB \
    -limits_config.per_stream_rate_limit_burst=10GB -limits_config.max_global_streams_per_user=0 \
    -limits_config.max_query_series=100000 -limits_config.query_timeout=10m 2>>"$WORK/strata.log" &
  PID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && return; sleep 0.1; done
  cat "$WORK/strata.log"; exit 1
}
peak_rss() { awk '/VmHWM/ {print $2}' /proc/$PID/status; }

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), cores: $(nproc), mem: $(free -g | awk '/Mem/ {print $2}') GiB, load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== ingest: $LINES lines over 24 hours"
start_server "$WORK/data"
"$LOADGEN" -port "$PORT" -lines "$LINES" -conns 4 -span 86400 -loghub "$LOGHUB" | tee "$WORK/ingest.txt"
RAW=$(sed -n 's/.*raw_bytes=\([0-9]*\).*/\1/p' "$WORK/ingest.txt")
curl -sf -X POST "http://127.0.0.1:$PORT/flush" >/dev/null
echo "raw line bytes: $RAW ($(awk -v r="$RAW" 'BEGIN{printf "%.2f GB", r/1e9}')), chunks: $(du -sb "$WORK/data/chunks" | cut -f1) bytes"

NOW=$(date +%s)
START=$(( (NOW - 86400 - 120) * 1000000000 ))
END=$(( (NOW + 60) * 1000000000 ))
# q NAME QUERY [STEP]: query_range over the whole day, best of 3
q() {
  local name=$1 query=$2 step=${3:-} best="" out t
  for _ in 1 2 3; do
    out=$(curl -sf -G "http://127.0.0.1:$PORT/loki/api/v1/query_range" --data-urlencode "query=$query" \
      --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "limit=100" \
      ${step:+--data-urlencode "step=$step"} -w '\n%{time_total}')
    t=$(echo "$out" | tail -n1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; BODY=$(echo "$out" | head -n -1); fi
  done
  echo "$BODY" | python3 -c '
import json, sys
name, t, raw = sys.argv[1], float(sys.argv[2]), float(sys.argv[3] or 0)
d = json.load(sys.stdin)["data"]
s = d["stats"]["summary"]
r = d["result"]
n = sum(len(x["values"]) for x in r)
print("%-62s %7.3f s  %6.2f GB/s  %6.1f M lines/s  %s  %s" % (name, t, s["totalBytesProcessed"] / t / 1e9,
      s["totalLinesProcessed"] / t / 1e6, ("%d lines returned" if d["resultType"] == "streams" else "%d points") % n,
      "| raw %.2f GB/s" % (raw / t / 1e9) if raw else ""))' \
    "$name" "$best" "${COVER:-}"
}
echo "== queries over 24 hours (warm, best of 3)"
# GB/s: Loki's totalBytesProcessed (bytes decompressed and filtered) per second. "raw": all raw line
# bytes of the day per second, for the queries that must cover all of them (full scans; blocks their
# trigram filter rules out count as covered without being decompressed)
COVER=$RAW
q 'sum(count_over_time({env="bench"}[5m]))' 'sum(count_over_time({env="bench"}[5m]))'
q '{env="bench"} |= "NO_SUCH_STRING_ANYWHERE"  (literal, no match)' '{env="bench"} |= "NO_SUCH_STRING_ANYWHERE"'
q 'sum(count_over_time({env="bench"} |= "INFO" [5m]))  (literal, many)' 'sum(count_over_time({env="bench"} |= "INFO" [5m]))'
q 'sum(count_over_time({env="bench"} |= "Connection reset by peer" [5m]))  (literal, few)' 'sum(count_over_time({env="bench"} |= "Connection reset by peer" [5m]))'
COVER= q '{env="bench"} |~ "blk_[0-9]+ terminating"  (regex with literal)' '{env="bench"} |~ "blk_[0-9]+ terminating"'
q '{env="bench"} |~ "blk_[0-9]+ nomatch"  (regex with literal, full scan)' '{env="bench"} |~ "blk_[0-9]+ nomatch"'
q '{env="bench"} |~ "[0-9]{3}\\.[0-9]{3}\\.x"  (regex, no literal)' '{env="bench"} |~ "[0-9]{3}\\.[0-9]{3}\\.x"'
# level="..." lets scans skip the parse of lines without the value (st_pipeline_value_literal);
# level=~"..." parses every line
q '{env="bench"} | logfmt | level="nomatch"  (value prefilter)' '{env="bench"} | logfmt | level="nomatch"'
q '{env="bench"} | logfmt | level=~"nomatch"  (every line parsed)' '{env="bench"} | logfmt | level=~"nomatch"'
q '{env="bench"} | json | level="nomatch"  (value prefilter)' '{env="bench"} | json | level="nomatch"'
q '{env="bench"} | json | level=~"nomatch"  (every line parsed)' '{env="bench"} | json | level=~"nomatch"'
q 'sum by (job) (rate({env="bench"}[1m]))  step 1m' 'sum by (job) (rate({env="bench"}[1m]))' 60
echo "peak RSS: $(( $(peak_rss) / 1024 )) MiB"
kill -TERM $PID; wait $PID || true
COVER=

echo "== 100,000 streams (16 jobs x 6250 hosts, 1,000,000 lines)"
start_server "$WORK/data100k"
"$LOADGEN" -port "$PORT" -lines 1000000 -conns 4 -jobs 16 -hosts 6250 -loghub "$LOGHUB" | tail -n1
curl -sf -X POST "http://127.0.0.1:$PORT/flush" >/dev/null
JOB=$(curl -sf -G "http://127.0.0.1:$PORT/loki/api/v1/label/job/values" --data-urlencode "since=2h" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][3])')
START=$(( ($(date +%s) - 7200) * 1000000000 )); END=$(( ($(date +%s) + 60) * 1000000000 ))
q "{job=\"$JOB\", host=\"host-4242\"}  (1 of 100,000 streams)" "{job=\"$JOB\", host=\"host-4242\"}"
echo "peak RSS with 100,000 streams: $(( $(peak_rss) / 1024 )) MiB"
kill -TERM $PID; wait $PID || true
"$INDEXBENCH" "$WORK/data100k/index" fake 2000
