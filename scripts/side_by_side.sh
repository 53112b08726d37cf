#!/usr/bin/env bash
# A proxy hop side by side with tower-mesh, on loopback, measured in one run.
#
# Targets, all answering the walkthrough's request (a Chrome user agent, routed to v2):
#   bare       examples/hello_server.rs --mode bare
#   mesh       the same server with MeshRouter and the walkthrough's rules (crate defaults)
#   mesh-lean  the same with decision_extensions(false)
#   haproxy    HAProxy (Debian's package) routing Chrome to v2, in front of two bare servers
#
# The servers (and HAProxy) are pinned to CPU 0, wrk (Debian's package) to CPU 1. Each round
# drives every target for DURATION with CONNECTIONS keep-alive connections, in an order that
# turns with the round. Printed per target: the median over rounds of its throughput divided
# by the bare server's in the same round, and the server CPU per request (user + system time
# of the target's processes over the requests wrk completed, median over rounds).
#
#   scripts/side_by_side.sh                         # 5 rounds of 5 s
#   ROUNDS=9 DURATION=10s scripts/side_by_side.sh
#
# Needs: wrk, haproxy and taskset (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-16}
BASE_PORT=${BASE_PORT:-18180}
CHROME='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.77 Safari/537.36'

if ! command -v wrk >/dev/null || ! command -v haproxy >/dev/null; then
  echo "== installing wrk and haproxy (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends wrk haproxy >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends wrk haproxy >/dev/null; }
fi

echo "== building examples/hello_server.rs (release)" >&2
cargo build -q --release --example hello_server
SERVER=target/release/examples/hello_server

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bare_port=$BASE_PORT
mesh_port=$((BASE_PORT + 1))
lean_port=$((BASE_PORT + 2))
haproxy_port=$((BASE_PORT + 3))
v1_port=$((BASE_PORT + 4))
v2_port=$((BASE_PORT + 5))

start() { # start NAME ARGS...: a process pinned to CPU 0; its pid is in $work/NAME.pid
  local name=$1
  shift
  taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  echo $! >"$work/$name.pid"
}

start bare "$SERVER" --port "$bare_port" --mode bare --answer v2
start mesh "$SERVER" --port "$mesh_port" --mode mesh
start lean "$SERVER" --port "$lean_port" --mode mesh-lean
start v1 "$SERVER" --port "$v1_port" --mode bare --answer v1
start v2 "$SERVER" --port "$v2_port" --mode bare --answer v2
cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend walkthrough
    bind 127.0.0.1:$haproxy_port
    acl chrome req.hdr(user-agent) -m reg .*Chrome.*
    use_backend v2 if chrome
    default_backend v1
backend v1
    http-reuse always
    server v1 127.0.0.1:$v1_port
backend v2
    http-reuse always
    server v2 127.0.0.1:$v2_port
EOF
start haproxy haproxy -db -f "$work/haproxy.cfg"

# Wait until every target answers the walkthrough's request with v2.
for port in $bare_port $mesh_port $lean_port $haproxy_port; do
  for _ in $(seq 100); do
    if curl -s -H 'Host: helloworld-service' -A "$CHROME" "http://127.0.0.1:$port/" | grep -q '(v2)'; then
      continue 2
    fi
    sleep 0.1
  done
  echo "the target on port $port does not answer" >&2
  exit 1
done

cpu_ticks() { # the user + system clock ticks of the given pids
  local total=0 p
  for p in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

targets=(bare mesh mesh-lean haproxy)
declare -A port=([bare]=$bare_port [mesh]=$mesh_port [mesh-lean]=$lean_port [haproxy]=$haproxy_port)
declare -A procs=(
  [bare]="$(cat "$work/bare.pid")"
  [mesh]="$(cat "$work/mesh.pid")"
  [mesh-lean]="$(cat "$work/lean.pid")"
  [haproxy]="$(cat "$work/haproxy.pid") $(cat "$work/v1.pid") $(cat "$work/v2.pid")"
)
hz=$(getconf CLK_TCK)
results="$work/results"
: >"$results"

for round in $(seq 1 "$ROUNDS"); do
  n=${#targets[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${targets[$(((i + round - 1) % n))]}
    # shellcheck disable=SC2086
    before=$(cpu_ticks ${procs[$t]})
    out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" \
      -H 'Host: helloworld-service' -H "User-Agent: $CHROME" "http://127.0.0.1:${port[$t]}/")
    # shellcheck disable=SC2086
    after=$(cpu_ticks ${procs[$t]})
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    echo "$round $t $rate $requests $((after - before)) $errors" >>"$results"
    echo "round $round: $t $rate req/s ${errors:+($errors)}" >&2
  done
done

# Per target: the median of (rate / bare rate in the same round) and of the CPU per request.
awk -v hz="$hz" -v rounds="$ROUNDS" -v duration="$DURATION" -v conns="$CONNECTIONS" '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  { rate[$1, $2] = $3; reqs[$1, $2] = $4; ticks[$1, $2] = $5; seen[$2] = 1 }
  END {
    order[1] = "bare"; order[2] = "mesh"; order[3] = "mesh-lean"; order[4] = "haproxy"
    name["bare"] = "bare hyper hello server"
    name["mesh"] = "MeshRouter, walkthrough rules (defaults)"
    name["mesh-lean"] = "MeshRouter, decision_extensions(false)"
    name["haproxy"] = "HAProxy hop in front of two bare servers"
    printf "%d rounds of %s per target, %d connections, wrk on CPU 1, servers on CPU 0\n", rounds, duration, conns
    printf "| %-42s | %12s | %14s | %22s |\n", "target", "req/s (med.)", "ratio to bare", "server CPU per request"
    printf "|%s|%s|%s|%s|\n", "--------------------------------------------", "-------------:", "---------------:", "-----------------------:"
    for (k = 1; k <= 4; k++) {
      t = order[k]; ratios = ""; cpus = ""; rates = ""
      for (r = 1; r <= rounds; r++) {
        ratios = ratios " " rate[r, t] / rate[r, "bare"]
        rates = rates " " rate[r, t]
        cpus = cpus " " (ticks[r, t] / hz) / reqs[r, t] * 1e6
      }
      printf "| %-42s | %12.0f | %14.3f | %19.2f µs |\n", name[t], median(rates), median(ratios), median(cpus)
    }
  }' "$results"
