"""Prints the peer table from the bench's results (one JSON object a line:
path, system, connections, round, rps, p50_us, p99_us), medians over rounds."""

import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line)
        runs[(r["path"], r["system"], r["connections"])].append(r)


def median(path, system, connections, key):
    values = [r[key] for r in runs[(path, system, connections)]]
    return statistics.median(values) if values else None


def latency(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def rate(rps):
    return f"{rps / 1000:.1f}k/s" if rps >= 1000 else f"{rps:.0f}/s"


PATHS = [
    ("invoke", "`InvokeAgentRuntime`, echo agent", "AWS `BedrockAgentCoreApp` (uvicorn)", "static nginx reply"),
    ("mcp", "MCP `tools/call` of an OpenAPI tool", "FastMCP `from_openapi` (uvicorn)", "nginx upstream direct"),
]
rounds = max(len(v) for v in runs.values())
print(f"Corral against peers: medians of {rounds} alternating rounds, wrk on loopback, "
      f"{sys.argv[2] if len(sys.argv) > 2 else ''}")
print()
print("| path | conns | Corral | p50 | p99 | peer | peer | p50 | p99 | **throughput ×** | **p50 ×** "
      "| floor | floor | p50 | Corral's p50 over floor |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key, label, peer_label, floor_label in PATHS:
    for c in sorted({k[2] for k in runs if k[0] == key}):
        m = lambda system, field: median(key, system, c, field)
        corral, peer, floor = (m(s, "rps") for s in ("corral", "peer", "floor"))
        print(
            f"| {label} | {c} | {rate(corral)} | {latency(m('corral', 'p50_us'))} | {latency(m('corral', 'p99_us'))} "
            f"| {peer_label} | {rate(peer)} | {latency(m('peer', 'p50_us'))} | {latency(m('peer', 'p99_us'))} "
            f"| **{corral / peer:.1f}×** | **{m('peer', 'p50_us') / m('corral', 'p50_us'):.1f}×** "
            f"| {floor_label} | {rate(floor)} | {latency(m('floor', 'p50_us'))} "
            f"| +{m('corral', 'p50_us') - m('floor', 'p50_us'):.0f} µs ({corral / floor:.2f} of its rate) |"
        )

# The MCP path beside a plain reverse proxy: what forwarding alone adds.
if any(k[0] == "mcp" and k[1] == "proxy" for k in runs):
    print()
    print("| MCP path | conns | Corral gateway | p50 over direct | nginx reverse proxy | p50 over direct "
          "| **proxy / Corral, added p50** | Corral / proxy, throughput |")
    print("|---|---|---|---|---|---|---|---|")
    for c in sorted({k[2] for k in runs if k[0] == "mcp" and k[1] == "proxy"}):
        m = lambda system, field: median("mcp", system, c, field)
        direct = m("floor", "p50_us")
        corral_added = m("corral", "p50_us") - direct
        proxy_added = m("proxy", "p50_us") - direct
        print(
            f"| `tools/call` / `GET /pets/1` | {c} | {rate(m('corral', 'rps'))} | +{corral_added:.0f} µs "
            f"| {rate(m('proxy', 'rps'))} | +{proxy_added:.0f} µs "
            f"| **{proxy_added / corral_added:.2f}×** | {m('corral', 'rps') / m('proxy', 'rps'):.2f} |"
        )
