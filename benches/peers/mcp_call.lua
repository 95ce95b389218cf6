-- wrk: one MCP `tools/call` of TOOL (env CORRAL_BENCH_TOOL) with
-- {"petId": 1}, as a stateless streamable-HTTP client sends it.
local tool = os.getenv("CORRAL_BENCH_TOOL") or "getPet"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.body = string.format(
    '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":{"petId":1}}}',
    tool)

