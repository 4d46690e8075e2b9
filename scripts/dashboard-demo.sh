#!/usr/bin/env bash
# A scripted operations run for the dashboard picture: the sample app as three processes
# (serve --front, relay, projections run) on PostgreSQL + JetStream, scraped by a real
# Prometheus with the alert rules loaded. Orders are seeded; `projections run` is killed
# with SIGKILL and more orders seeded while it is down (the stall the dashboard and the
# alerts must show); then it is restarted. At the end the dashboard's panels are rendered
# from Prometheus (scripts/render-dashboard.py) and the alerts' history is written beside.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test NATS_URL=nats://127.0.0.1:4222 \
#     scripts/dashboard-demo.sh [OUT_DIR]
#
# Needs: the prometheus binary (Debian: apt-get install -y prometheus), python3 with
# matplotlib, and the orders binary (built here with cargo). Takes about ten minutes: the
# projections are down for about five, long enough for TidemarkProjectionStalled to fire.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=${1:-docs/ops}
: "${DATABASE_URL:?set DATABASE_URL}"
: "${NATS_URL:=nats://127.0.0.1:4222}"
export DATABASE_URL NATS_URL
RUN=demo_$(date +%s)
export ORDERS_SCHEMA=$RUN ORDERS_JETSTREAM_STREAM=${RUN^^} ORDERS_SUBJECT_PREFIX=$RUN
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$DATABASE_URL" -qc "DO \$\$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '${RUN}%' LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP; END \$\$;" >/dev/null 2>&1 || true
  delete_stream "${RUN^^}" || true
  rm -rf "$WORK"
}
# Deletes a JetStream stream through the plain NATS protocol (no NATS client needed).
delete_stream() {
  python3 - "$NATS_URL" "$1" <<'NATS'
import socket, sys, urllib.parse
url, stream = urllib.parse.urlparse(sys.argv[1]), sys.argv[2]
with socket.create_connection((url.hostname or "127.0.0.1", url.port or 4222), timeout=5) as s:
    s.sendall(f'CONNECT {{"verbose":false}}\r\nPUB $JS.API.STREAM.DELETE.{stream} 0\r\n\r\nPING\r\n'.encode())
    reply = b""
    while b"PONG" not in reply:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
NATS
}
trap cleanup EXIT

cargo build -q -p example-orders --bin orders
ORDERS=target/debug/orders
[ -n "${CARGO_TARGET_DIR:-}" ] && ORDERS=$CARGO_TARGET_DIR/debug/orders

log() { echo "[$(date -u +%H:%M:%S)] $*"; }
start() { # name, args…
  local name=$1; shift
  "$ORDERS" "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  echo $! >"$WORK/$name.pid"
}

cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $PWD/docs/ops/alerts.yml
scrape_configs:
  - job_name: orders
    static_configs:
      - targets: ["127.0.0.1:19100", "127.0.0.1:19101", "127.0.0.1:19102"]
EOF
PROM=http://127.0.0.1:19090
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address=127.0.0.1:19090 >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)

log "migrating schema $RUN"
"$ORDERS" migrate >/dev/null
start front serve --front --addr 127.0.0.1:18080 --metrics-addr 127.0.0.1:19100
start relay relay --metrics-addr 127.0.0.1:19101 --health-addr 127.0.0.1:19201
start back projections run --metrics-addr 127.0.0.1:19102 --health-addr 127.0.0.1:19202
for port in 18080 19201 19202; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/livez" >/dev/null && break; sleep 0.2; done
done
BEGIN=$(date +%s)

# HTTP traffic for the command and HTTP panels (seeding goes through the handlers in its
# own process): about 10 orders a second placed and read back, until the end.
TOKEN=$("$ORDERS" token demo@example.com)
python3 - "$TOKEN" >"$WORK/http-load.log" 2>&1 <<'LOAD' &
import json, sys, time, urllib.request, uuid
token, base = sys.argv[1], "http://127.0.0.1:18080"
body = json.dumps({"currency": "EUR", "lines": [{"product": "tea-earl-grey", "quantity": 2,
                                                  "unit_price_minor": 450}]}).encode()
while True:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json",
               "idempotency-key": str(uuid.uuid4())}
    try:
        request = urllib.request.Request(f"{base}/orders", data=body, headers=headers, method="POST")
        placed = json.load(urllib.request.urlopen(request, timeout=10))
        read = urllib.request.Request(f"{base}/orders/{placed['entity_id']}?version=1&wait_ms=2000",
                                      headers={"authorization": f"Bearer {token}"})
        urllib.request.urlopen(read, timeout=10).read()
    except Exception as error:  # a stalled read model answers with an error here: keep going
        print(error, flush=True)
    time.sleep(0.1)
LOAD
PIDS+=($!)

log "seeding orders with every process up"
for _ in 1 2 3; do "$ORDERS" seed --orders 150 --concurrency 4 >/dev/null; sleep 20; done

log "killing projections run (SIGKILL) and seeding while it is down"
kill -9 "$(cat "$WORK/back.pid")"
for _ in 1 2 3 4 5 6; do "$ORDERS" seed --orders 40 --concurrency 2 >/dev/null; sleep 45; done

log "restarting projections run"
start back projections run --metrics-addr 127.0.0.1:19102 --health-addr 127.0.0.1:19202
for _ in 1 2; do "$ORDERS" seed --orders 100 --concurrency 4 >/dev/null; sleep 30; done

MINUTES=$(( ($(date +%s) - BEGIN) / 60 + 1 ))
log "rendering the last $MINUTES minutes"
python3 scripts/render-dashboard.py --prometheus "$PROM" --minutes "$MINUTES" --step 4 \
  --rate-interval 30s --out "$OUT/dashboard.png"
python3 - "$PROM" "$BEGIN" >"$OUT/dashboard-alerts.txt" <<'EOF'
import json, sys, time, urllib.parse, urllib.request
prom, begin = sys.argv[1], float(sys.argv[2])
q = urllib.parse.urlencode({"query": "ALERTS", "start": begin, "end": time.time(), "step": 2})
result = json.load(urllib.request.urlopen(f"{prom}/api/v1/query_range?{q}"))["data"]["result"]
print("Alerts during the run (seconds after the start; from Prometheus' ALERTS series):")
for series in sorted(result, key=lambda s: float(s["values"][0][0])):
    m = series["metric"]
    first, last = float(series["values"][0][0]) - begin, float(series["values"][-1][0]) - begin
    print(f"  {m['alertname']:<32} {m['alertstate']:<8} {first:6.0f}s .. {last:6.0f}s  {m.get('projection', '')}")
EOF
cat "$OUT/dashboard-alerts.txt"
log "done: $OUT/dashboard.png"
