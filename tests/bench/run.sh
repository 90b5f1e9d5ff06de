#!/usr/bin/env bash
# run.sh: the Strata benchmark (not a test). Starts strata on a fresh data directory, pushes >= 1M real
# log lines (loghub samples from ../shared/data/loghub when present, else generated; 16 jobs x 8 hosts)
# over several connections, then flushes, measures disk use, runs warm queries, and prints the numbers
# next to zstd -3 and ripgrep on the same raw bytes. Usage: tests/bench/run.sh [lines] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
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
  -limits_config.per_stream_rate_limit_burst=10GB 2>"$WORK/strata.log" &
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
