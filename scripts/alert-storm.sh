#!/usr/bin/env bash
# Alert storm, side by side: the same storm of Alertmanager v2 alerts
# (POST /api/v2/alerts) into `faultline serve` on SQLite and into
# Alertmanager (Debian's prometheus-alertmanager), each notifying a webhook
# sink served by the harness (crates/faultline-server/examples/alert_storm.rs).
# Results (JSON) go to $OUT (default target/alert-storm/); the table in
# docs/benchmarks.md "Alert storm" comes from them.
#
#   scripts/alert-storm.sh                 # 100,000 alerts, both targets
#   ALERTS=5000 TARGETS=faultline scripts/alert-storm.sh
#
# Needs: `apt-get install -y prometheus-alertmanager` for the Alertmanager
# side (skipped with a message when it is not installed).
set -euo pipefail
cd "$(dirname "$0")/.."

ALERTS=${ALERTS:-100000}
SERVICES=${SERVICES:-50}
ALERTNAMES=${ALERTNAMES:-20}
CONCURRENCY=${CONCURRENCY:-8}
OVER_SECS=${OVER_SECS:-0}
SETTLE_SECS=${SETTLE_SECS:-45}
RESOLVE_WAIT_SECS=${RESOLVE_WAIT_SECS:-45}
TARGETS=${TARGETS:-"faultline alertmanager"}
OUT=${OUT:-target/alert-storm}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# FAULTLINE_BIN and STORM_HARNESS run given builds (a before/after comparison).
if [[ -z "${FAULTLINE_BIN:-}" || -z "${STORM_HARNESS:-}" ]]; then
  cargo build --release -q -p faultline-cli
  cargo build --release -q -p faultline-server --example alert_storm
fi
BIN=${FAULTLINE_BIN:-$CARGO_TARGET_DIR/release/faultline}
HARNESS=${STORM_HARNESS:-$CARGO_TARGET_DIR/release/examples/alert_storm}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

common=(--alerts "$ALERTS" --services "$SERVICES" --alertnames "$ALERTNAMES" --concurrency "$CONCURRENCY"
        --over-secs "$OVER_SECS" --settle-secs "$SETTLE_SECS" --resolve-wait-secs "$RESOLVE_WAIT_SECS")

for target in $TARGETS; do
  work=$(mktemp -d)
  sink_port=$(free_port)
  case "$target" in
  faultline)
    cat > "$work/response.yaml" <<EOF
users:
  - {id: oncall, contacts: [{channel: hook}]}
  - {id: lead, contacts: [{channel: hook}]}
escalation_policies:
  - name: storm
    levels:
      - {delay_minutes: 5, targets: [{user: oncall}]}
      - {delay_minutes: 30, targets: [{user: lead}]}
default_policy: storm
channels:
  - {name: hook, type: webhook, url_env: STORM_HOOK_URL}
EOF
    "$BIN" token create --data-dir "$work/data" --scope admin > "$work/token.txt"
    token=$(tail -1 "$work/token.txt" | tr -d '[:space:]')
    port=$(free_port)
    STORM_HOOK_URL="http://127.0.0.1:$sink_port/hook" FAULTLINE_RESPONSE_CONFIG="$work/response.yaml" FAULTLINE_LOG=warn \
      "$BIN" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --otlp-grpc-listen off --otlp-http-listen off \
      > "$work/serve.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
    "$HARNESS" --target faultline --url "http://127.0.0.1:$port" --sink "127.0.0.1:$sink_port" --token "$token" \
      "${common[@]}" --json "$OUT/faultline.json" > /dev/null
    ls -l "$work/data" > "$OUT/faultline-data.txt"
    ;;
  alertmanager)
    if ! command -v prometheus-alertmanager >/dev/null; then
      echo "prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager): skipped" >&2
      continue
    fi
    prometheus-alertmanager --version 2>&1 | head -1 > "$OUT/alertmanager-version.txt"
    # Alertmanager's defaults except group_by (one group per service, as
    # Faultline's correlation yields here) and a 1 m group_interval so the
    # resolved notifications arrive inside the run.
    cat > "$work/am.yml" <<EOF
route:
  receiver: hook
  group_by: [service]
  group_wait: 30s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:$sink_port/hook
        send_resolved: true
EOF
    port=$(free_port)
    cluster_port=$(free_port)
    prometheus-alertmanager --config.file "$work/am.yml" --storage.path "$work/am-data" \
      --web.listen-address "127.0.0.1:$port" --cluster.listen-address "" --log.level warn \
      > "$work/am.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/-/ready"
    "$HARNESS" --target alertmanager --url "http://127.0.0.1:$port" --sink "127.0.0.1:$sink_port" \
      "${common[@]}" --json "$OUT/alertmanager.json" > /dev/null
    ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
  esac
  kill "${PIDS[-1]}" 2>/dev/null || true
  wait "${PIDS[-1]}" 2>/dev/null || true
  rm -rf "$work"
  echo "$target: $OUT/$target.json"
done
