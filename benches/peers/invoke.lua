-- wrk: POST the echo payload to PATH (env CORRAL_BENCH_PATH), spreading
-- requests over 64 AgentCore session ids; each wrk thread walks its own share.
local path = os.getenv("CORRAL_BENCH_PATH") or "/invocations"
local sessions = 64
local counter = 0
local thread_id = 0
local threads = 0

function setup(thread)
    thread:set("thread_id", threads)
    threads = threads + 1
end

wrk.method = "POST"
wrk.body = '{"prompt":"hello"}'
wrk.headers["Content-Type"] = "application/json"

function request()
    counter = counter + 1
    local session = string.format("peers-%040d", (counter * 7 + thread_id) % sessions)
    wrk.headers["X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"] = session
    return wrk.format(nil, path)
end
