# Shared by the peers bench scripts (sourced): background processes under
# $RUN killed on exit, free ports, waiting for servers, wrk's latencies in
# µs, and the nginx upstream with the OpenAPI
# document and gateway configuration that point at it. The caller sets
# HERE, RUN and NGINX.

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # URL [curl args]: until it answers 2xx
    local url=$1; shift
    for _ in $(seq 1 600); do curl -sf -o /dev/null "$@" "$url" && return 0; sleep 0.1; done
    echo "no answer at $url" >&2; return 1
}
wait_for_any() {  # URL...: until each answers at all (an MCP endpoint refuses a GET)
    local url
    for url in "$@"; do
        for _ in $(seq 1 600); do curl -s -o /dev/null "$url" && continue 2; sleep 0.1; done
        echo "no answer at $url" >&2; return 1
    done
}
# wrk's latency ("151.00us", "1.20ms", "2.00s") in µs.
to_us() { awk '{v=$1; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0.001; printf "%.1f", v * m}' <<<"$1"; }
start() {  # NAME CMD...: in the background, logged to $RUN/NAME.log
    local name=$1; shift
    "$@" >"$RUN/$name.log" 2>&1 &
    PIDS+=($!)
}

# nginx serving the OpenAPI upstream and the static-reply floor; sets
# NGINX_PORT, NGINX_PID and UPSTREAM, and writes $RUN/pets-openapi.json and
# $RUN/gateway.json for a gateway in front of it.
start_upstream() {
    NGINX_PORT=$(free_port)
    mkdir -p "$RUN/nginx-body"
    sed -e "s|@WORK@|$RUN|g" -e "s|@PORT@|$NGINX_PORT|g" "$HERE/nginx.conf" >"$RUN/nginx.conf"
    start nginx "$NGINX" -e "$RUN/nginx-error.log" -c "$RUN/nginx.conf"
    NGINX_PID=${PIDS[-1]}
    UPSTREAM=http://127.0.0.1:$NGINX_PORT
    wait_for "$UPSTREAM/ping"
    sed "s|@UPSTREAM@|$UPSTREAM|" "$HERE/pets-openapi.json" >"$RUN/pets-openapi.json"
    cp "$HERE/gateway.json" "$RUN/gateway.json"
}
