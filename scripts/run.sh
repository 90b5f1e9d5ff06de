#!/usr/bin/env bash
# run.sh: Quick start: installs dependencies, builds, and runs `strata serve` on its embedded default
# configuration (127.0.0.1:3100, data under ./data). Extra arguments go to `strata serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec ./build/server/strata serve "$@"
