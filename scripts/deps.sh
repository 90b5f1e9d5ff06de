#!/usr/bin/env bash
# deps.sh: installs what Strata needs to build and test on Debian 12 (idempotent: apt-get runs only
# when a package is missing; npm ci only when node_modules is out of date).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libzstd-dev liblmdb-dev libuv1-dev libcurl4-openssl-dev libssl-dev zlib1g-dev libsnappy-dev liblz4-dev
      libprotobuf-c-dev protobuf-c-compiler libyaml-dev libpcre2-dev libcmocka-dev libxxhash-dev
      libhttp-parser-dev lmdb-utils zstd ripgrep nodejs npm curl python3 openssl
      chromium                      # headless: renders the HTML retention report (tests/lifecycle/test_report.py)
      prometheus                    # promtool: checks /metrics (tests/integration/metrics.test.mjs)
      libjansson-dev libyajl-dev)   # the last two only for tests/bench/json_bench.c

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. NodeSource); accept any node >= 20 on the PATH.
if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ ${#want[@]} -gt 0 ]; then
  echo "deps: installing ${want[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

# Node packages for the integration and conformance tests (pinned by package-lock.json).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
