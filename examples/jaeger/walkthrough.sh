#!/usr/bin/env bash
# A traced session end to end: serve (exporting to Jaeger), deploy the
# assistant, invoke it twice in one session with a caller's traceparent,
# then print where to look. Needs Jaeger from docker-compose.yml running.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build -q -p corral-cli -p corral-examples
corral=target/debug/corral
agent=target/wasm-guests/wasm32-wasip2/wasm-guest/assistant_agent.wasm

export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://localhost:4317}
export OTEL_EXPORTER_OTLP_PROTOCOL=${OTEL_EXPORTER_OTLP_PROTOCOL:-grpc}
export OTEL_SERVICE_NAME=${OTEL_SERVICE_NAME:-corral}
data=$(mktemp -d)
$corral serve --listen 127.0.0.1:8080 --data-dir "$data" --builtin-tools \
    --script examples/scripts/assistant.toml &
server=$!
trap 'kill $server' EXIT
until curl -sf http://127.0.0.1:8080/ping >/dev/null; do sleep 0.2; done

$corral deploy --server http://127.0.0.1:8080 --name assistant "$agent"
session="jaeger-walkthrough-$(date +%s)-0123456789abcdef"
for prompt in 'What is (17 * 23) + 4?' 'Now divide that by 5'; do
    curl -s http://127.0.0.1:8080/runtimes/assistant/invocations \
        -H "x-amzn-bedrock-agentcore-runtime-session-id: $session" \
        -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
        -H 'content-type: application/json' \
        -d "{\"prompt\": \"$prompt\"}"
    echo
done
sleep 2
echo
echo "In the terminal:  $corral trace --data-dir $data $session"
echo "In Jaeger:        http://localhost:16686/search?service=$OTEL_SERVICE_NAME&tags=%7B%22session.id%22%3A%22$session%22%7D"
