#!/usr/bin/env bash
# Lost-host recovery time (issue 6). usage: bench/lost_host.sh [TASKS] [-- server flags]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p stevedore -q
scripts/build-test-images >/dev/null
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/python/requirements.txt; }
exec .venv/bin/python bench/lost_host.py "$@"
