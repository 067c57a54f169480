#!/usr/bin/env bash
# awslogs shipping rate against `docker logs` (issue 18). usage: bench/logs_burst.sh [LINES] [LEN]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p stevedore -q
scripts/build-test-images >/dev/null
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/python/requirements.txt; }
exec .venv/bin/python bench/logs_burst.py "$@"
