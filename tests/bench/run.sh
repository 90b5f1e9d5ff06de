#!/usr/bin/env bash
# run.sh: the Strata benchmark (not a test). Starts strata on a fresh data directory, pushes >= 1M real
# log lines (loghub samples from ../shared/data/loghub when present, else generated; 16 jobs x 8 hosts)
# over several connections, then flushes, measures disk use, runs warm queries, and prints the numbers
# next to zstd -3 and ripgrep on the same raw bytes. Usage: tests/bench/run.sh [lines] [connections]
# (STRATA_ARGS adds flags to strata serve, e.g. -ingester.block_filters=false)
#
# tests/bench/run.sh ingest [lines] [connections]: the ingest matrix instead: every push format (Loki
# JSON, Loki protobuf + snappy, OTLP protobuf) at 128, 10,000 and 100,000 active streams, each on a
# fresh server, printing lines/s, the server's peak RSS (VmHWM) and its RSS per active stream; plus
# 100,000 streams holding one line each (what an idle active stream costs). HOSTS="6250" and
# FORMATS="json" pick rows (then the idle rows are skipped); STRATA_ARGS adds flags to strata serve.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = ingest ]; then
  LINES=${2:-1000000}
  CONNS=${3:-4}
  BIN=${STRATA_BIN:-build/server/strata}
  LOADGEN=${LOADGEN:-build/tests/bench/strata-loadgen}
  LOGHUB=${LOGHUB:-../shared/data/loghub}
  [ -x "$BIN" ] && [ -x "$LOADGEN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }
  WORK=$(mktemp -d /tmp/strata-bench.XXXXXX)
  PID=
  trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
  echo "== machine"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), cores: $(nproc), mem: $(free -g | awk '/Mem/ {print $2}') GiB, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  # bytes/stream: (RSS after the run - RSS before it) / streams in memory; heads_MiB: line and
  # metadata bytes held uncompressed in heads (not yet in chunk blocks)
  printf '%-6s %8s %9s %12s %10s %10s %12s %14s %10s\n' format streams lines lines/s MB/s peak_MiB rss_MiB bytes/stream heads_MiB
  # run FORMAT JOBS HOSTS LINES: a fresh server, one loadgen run, then its memory
  run() {
    local fmt=$1 jobs=$2 hosts=$3 lines=$4 port out base rss hwm streams
    rm -rf "$WORK/data"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$BIN" serve -common.path_prefix="$WORK/data" -server.http_listen_port="$port" -server.log_level=warn \
      -limits_config.ingestion_rate_mb=100000 -limits_config.ingestion_burst_size_mb=100000 \
      -limits_config.per_stream_rate_limit=10GB -limits_config.per_stream_rate_limit_burst=10GB \
      -limits_config.max_global_streams_per_user=0 ${STRATA_ARGS:-} 2>"$WORK/strata.log" &
    PID=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
    base=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
    out=$("$LOADGEN" -port "$port" -lines "$lines" -conns "$CONNS" -jobs "$jobs" -hosts "$hosts" -format "$fmt" \
      -loghub "$LOGHUB" 2>"$WORK/loadgen.err") || { cat "$WORK/loadgen.err" "$WORK/strata.log" >&2; exit 1; }
    sleep 1 # idle: the WAL and the flusher settle
    rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
    curl -sf "http://127.0.0.1:$port/metrics" >"$WORK/metrics"
    streams=$(awk '/^strata_ingester_memory_streams/ {print $2}' "$WORK/metrics")
    heads=$(awk '/^strata_ingester_head_bytes/ {print $2}' "$WORK/metrics")
    echo "$out" | awk -v f="$fmt" -v s="$streams" -v h="$hwm" -v r="$rss" -v b="$base" -v hb="$heads" '{
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      printf "%-6s %8d %9d %12.0f %10.1f %10.1f %12.1f %14.0f %10.1f\n", f, s, v["lines"], v["lines_per_sec"], v["raw_mb_per_sec"],
        h / 1024, r / 1024, (r - b) * 1024 / s, hb / 1048576 }'
    kill -TERM $PID; wait $PID || true
    PID=
  }
  for hosts in ${HOSTS:-8 625 6250}; do  # x 16 jobs: 128, 10,000 and 100,000 streams
    for fmt in ${FORMATS:-json proto otlp}; do run $fmt 16 $hosts "$LINES"; done
  done
  [ -n "${HOSTS:-}" ] && exit 0
  echo "-- 100,000 streams, one line each (idle active streams)"
  for fmt in json proto; do run $fmt 16 6250 100000; done
  exit 0
fi
LINES=${1:-1000000}
CONNS=${2:-4}
BIN=${STRATA_BIN:-build/server/strata}
LOADGEN=${LOADGEN:-build/tests/bench/strata-loadgen}
LOGHUB=${LOGHUB:-../shared/data/loghub}
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || { echo "build first: scripts/build.sh" >&2; exit 1; }

WORK=$(mktemp -d /tmp/strata-bench.XXXXXX)
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$BIN" serve -common.path_prefix="$WORK/data" -server.http_listen_port="$PORT" -server.log_level=warn \
  -limits_config.max_query_length=0s -limits_config.ingestion_rate_mb=10000 \
  -limits_config.ingestion_burst_size_mb=10000 -limits_config.per_stream_rate_limit=10GB \
  -limits_config.per_stream_rate_limit_burst=10GB ${STRATA_ARGS:-} 2>"$WORK/strata.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null || { cat "$WORK/strata.log"; exit 1; }

peak_rss() { awk '/VmHWM/ {print $2}' /proc/$PID/status; }

echo "== machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), cores: $(nproc), mem: $(free -g | awk '/Mem/ {print $2}') GiB"
echo "== ingest ($LINES lines, $CONNS connections)"
"$LOADGEN" -port "$PORT" -lines "$LINES" -conns "$CONNS" -loghub "$LOGHUB" -raw "$WORK/raw.log" | tee "$WORK/ingest.txt"
RAW_BYTES=$(sed -n 's/.*raw_bytes=\([0-9]*\).*/\1/p' "$WORK/ingest.txt")
echo "peak RSS after ingest: $(( $(peak_rss) / 1024 )) MiB"

curl -sf -X POST "http://127.0.0.1:$PORT/flush" >/dev/null
CHUNK_BYTES=$(du -sb "$WORK/data/chunks" | cut -f1)
INDEX_BYTES=$(du -sb "$WORK/data/index" | cut -f1)
WAL_BYTES=$(du -sb "$WORK/data/wal" | cut -f1)
echo "== disk after flush"
awk -v c="$CHUNK_BYTES" -v r="$RAW_BYTES" -v i="$INDEX_BYTES" -v w="$WAL_BYTES" 'BEGIN {
  printf "raw line bytes: %d, chunks: %d (1/%.2f of raw), index: %d, wal: %d\n", r, c, r/c, i, w }'
ZSTD_BYTES=$(zstd -3 -q -c "$WORK/raw.log" | wc -c)
awk -v z="$ZSTD_BYTES" -v r="$RAW_BYTES" 'BEGIN { printf "zstd -3 of the same raw file: %d (1/%.2f)\n", z, r/z }'

echo "== queries (warm; best of 3)"
START=$(( ($(date +%s) - 7200) * 1000000000 ))
END=$(( ($(date +%s) + 60) * 1000000000 ))
q() {
  local name=$1 query=$2 best=""
  for _ in 1 2 3; do
    local out t
    out=$(curl -sf -G "http://127.0.0.1:$PORT/loki/api/v1/query_range" --data-urlencode "query=$query" \
      --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "limit=100" -w '\n%{time_total}')
    t=$(echo "$out" | tail -n1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; BODY=$(echo "$out" | head -n -1); fi
  done
  local bytes lines
  bytes=$(echo "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["stats"]["summary"]["totalBytesProcessed"])')
  lines=$(echo "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["stats"]["summary"]["totalLinesProcessed"])')
  awk -v n="$name" -v t="$best" -v b="$bytes" -v l="$lines" 'BEGIN {
    printf "%-48s %7.3f s  %8.2f GB/s  %6.1f M lines/s  (%d bytes scanned)\n", n, t, b/t/1e9, l/t/1e6, b }'
}
q '{env="bench"} |= "NO_SUCH_STRING_ANYWHERE"' '{env="bench"} |= "NO_SUCH_STRING_ANYWHERE"'
q '{env="bench"} |= "error"' '{env="bench"} |= "error"'
q '{env="bench"} |~ "(?i)exception"' '{env="bench"} |~ "(?i)exception"'
q '{env="bench"} |~ "blk_[0-9]+ terminating"' '{env="bench"} |~ "blk_[0-9]+ terminating"'
echo "peak RSS after queries: $(( $(peak_rss) / 1024 )) MiB"

echo "== baselines on the same raw bytes"
if command -v rg >/dev/null; then
  cat "$WORK/raw.log" >/dev/null
  for pat in NO_SUCH_STRING_ANYWHERE error; do
    t0=$(date +%s.%N); rg -c "$pat" "$WORK/raw.log" >/dev/null || true; t1=$(date +%s.%N)
    awk -v p="$pat" -v a="$t0" -v b="$t1" -v r="$RAW_BYTES" 'BEGIN { printf "rg %-30s %7.3f s  %8.2f GB/s\n", p, b-a, r/(b-a)/1e9 }'
  done
fi
t0=$(date +%s.%N); zstd -3 -q -c "$WORK/raw.log" >/dev/null; t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v r="$RAW_BYTES" 'BEGIN { printf "zstd -3 compress                   %7.3f s  %8.2f MB/s\n", b-a, r/(b-a)/1e6 }'

echo "== metric queries (warm; best of 3; range queries use the API's default step, (end-start)/250)"
# qm NAME QUERY [ENDPOINT]: query_range over [START, END], or /query at END with ENDPOINT=query
qm() {
  local name=$1 query=$2 ep=${3:-query_range} best="" out t
  for _ in 1 2 3; do
    if [ "$ep" = query ]; then
      out=$(curl -sf -G "http://127.0.0.1:$PORT/loki/api/v1/query" --data-urlencode "query=$query" \
        --data-urlencode "time=$END" -w '\n%{time_total}')
    else
      out=$(curl -sf -G "http://127.0.0.1:$PORT/loki/api/v1/query_range" --data-urlencode "query=$query" \
        --data-urlencode "start=$START" --data-urlencode "end=$END" -w '\n%{time_total}')
    fi
    t=$(echo "$out" | tail -n1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; BODY=$(echo "$out" | head -n -1); fi
  done
  echo "$BODY" | python3 -c '
import json, sys
name, t = sys.argv[1], float(sys.argv[2])
d = json.load(sys.stdin)["data"]
s = d["stats"]["summary"]
res = d["result"]
pts = sum(len(x.get("values", [1])) for x in res) if d["resultType"] in ("matrix", "vector") else 1
print("%-64s %7.3f s  %6.1f M lines/s  %d series, %d points  (%d lines)" % (name, t, s["totalLinesProcessed"] / t / 1e6,
      len(res) if d["resultType"] != "scalar" else 0, pts, s["totalLinesProcessed"]))' "$name" "$best"
}
qm 'sum by (job) (rate({env="bench"}[1m]))' 'sum by (job) (rate({env="bench"}[1m]))'
qm 'sum by (job) (count_over_time({env="bench"} |= "error" [1m]))' 'sum by (job) (count_over_time({env="bench"} |= "error" [1m]))'
qm 'sum by (job, host) (bytes_over_time({env="bench"}[5m]))' 'sum by (job, host) (bytes_over_time({env="bench"}[5m]))'
qm 'count_over_time({env="bench"}[1m])  (no grouping: 128 streams)' 'count_over_time({env="bench"}[1m])'
qm 'topk(3, sum by (job) (rate({env="bench"}[5m])))' 'topk(3, sum by (job) (rate({env="bench"}[5m])))'
qm 'sum(rate({env="bench"} |= "error" [1m])) / sum(rate({env="bench"}[1m]))' \
  'sum(rate({env="bench"} |= "error" [1m])) / sum(rate({env="bench"}[1m]))'
qm 'sum by (job) (count_over_time({env="bench"} | logfmt [1m]))  (parser on every line)' \
  'sum by (job) (count_over_time({env="bench"} | logfmt [1m]))'
qm 'instant: sum by (job) (count_over_time({env="bench"}[3h]))' 'sum by (job) (count_over_time({env="bench"}[3h]))' query
echo "peak RSS after metric queries: $(( $(peak_rss) / 1024 )) MiB"
kill -TERM $PID; wait $PID || true
