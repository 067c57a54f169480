#!/usr/bin/env bash
# Idle cost of `stevedore up` (server + embedded agent in one process) with
# N running tasks: CPU time used over a window, from /proc/PID/stat.
# usage: bench/idle.sh [TASKS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
tasks=${1:-100}
window=${2:-60}
cargo build --release -p stevedore -q
scripts/build-test-images >/dev/null
[ -x .venv/bin/aws ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/python/requirements.txt; }
dir=$(mktemp -d)
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  ids=$(docker ps -aq --filter "label=com.stevedore.cluster=default" --filter "label=com.stevedore.bench=idle") || true
  arn=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1])).get('containerInstanceArn',''))" "$dir/agent/agent.json" 2>/dev/null || true)
  [ -n "$arn" ] && docker ps -aq --filter "label=com.stevedore.container-instance=$arn" | xargs -r docker rm -f >/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
RUST_LOG=warn target/release/stevedore up --listen 127.0.0.1:0 --data-dir "$dir" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do [ -s "$dir/server.json" ] && break; sleep 0.1; done
eval "$(target/release/stevedore env --data-dir "$dir")"
export PATH=$PWD/.venv/bin:$PATH
sleep 2
aws ecs register-task-definition --family idle --container-definitions \
  '[{"name":"app","image":"stevedore-test/busybox:latest","memory":8,"command":["sleep","86400"],"stopTimeout":1}]' >/dev/null
for _ in $(seq $((tasks / 10))); do
  aws ecs run-task --task-definition idle --count 10 --query 'length(tasks)' --output text >/dev/null
done
echo "waiting for $tasks tasks to be RUNNING..."
for _ in $(seq 300); do
  n=$(aws ecs list-tasks --query 'length(taskArns)' --output text)
  running=$(aws ecs describe-container-instances --container-instances "$(aws ecs list-container-instances --query 'containerInstanceArns[0]' --output text)" --query 'containerInstances[0].runningTasksCount' --output text)
  [ "$running" = "$tasks" ] && break
  sleep 1
done
echo "running tasks: $running (listed: $n)"
if [ "$running" != "$tasks" ]; then
  echo "FAIL: only $running of $tasks tasks are RUNNING; not measuring" >&2
  exit 1
fi
sleep 5   # let start-up work settle
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
a=$(cpu); sleep "$window"; b=$(cpu)
# The figure names the tasks that were RUNNING at the end of the window, as the
# server reports them, not the count we asked for.
running=$(aws ecs describe-clusters --query 'clusters[0].runningTasksCount' --output text)
python3 - "$a" "$b" "$ticks" "$window" "$running" <<'PY'
import sys
a, b, ticks, window, running = (float(x) for x in sys.argv[1:])
used = (b - a) / ticks
print(f"idle: {int(running)} running tasks (DescribeClusters runningTasksCount), {used:.3f} s CPU in {window:.0f} s = {100 * used / window:.2f}% of one core (server + agent, one process)")
PY
[ "$running" = "$tasks" ] || { echo "FAIL: $running of $tasks tasks still RUNNING after the window" >&2; exit 1; }
