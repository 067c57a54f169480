#!/usr/bin/env bash
# Measures signed DescribeClusters throughput with wrk (see BENCHMARKS.md).
# usage: bench/describe_clusters.sh [DURATION] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20s}
conns=${2:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
cargo build --release -p stevedore -q
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/python/requirements.txt; }
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
RUST_LOG=warn target/release/stevedore server --listen 127.0.0.1:0 --data-dir "$dir" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/server.json" ] && break; sleep 0.1; done
eval "$(target/release/stevedore env --data-dir "$dir")"
.venv/bin/aws ecs create-cluster --cluster-name bench >/dev/null
.venv/bin/python bench/sign_request.py "$dir" DescribeClusters '{"clusters":["bench"],"include":["STATISTICS","TAGS"]}' "$dir/req.lua"
endpoint=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['endpoint'])" "$dir/server.json")
echo "server: $endpoint  wrk: -t${WRK_THREADS:-1} -c$conns -d$duration --latency"
# One wrk thread by default: the 2-core machine is shared by wrk and the server.
wrk -t"${WRK_THREADS:-1}" -c"$conns" -d"$duration" --latency -s "$dir/req.lua" "$endpoint/" | tee "$dir/wrk.out"
# A refused request (e.g. 403 once the signature's clock skew runs out) is not
# throughput: the run only counts if every answer was 2xx and none failed.
if grep -E "Non-2xx or 3xx responses|Socket errors" "$dir/wrk.out" >&2; then
  echo "FAIL: some requests were not answered 2xx; the figure above is not a valid measurement" >&2
  exit 1
fi
