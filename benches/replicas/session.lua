-- wrk: POST an invocation of the echo agent to PATH (env CORRAL_BENCH_PATH,
-- default Corral's /runtimes/echo/invocations), spreading requests over
-- SESSIONS sessions per wrk thread (env CORRAL_BENCH_SESSIONS, default 64)
-- whose ids start with CORRAL_BENCH_PREFIX. Threads never share a session:
-- concurrent calls to one session queue behind each other, which would
-- measure that queue instead of the server.
local path = os.getenv("CORRAL_BENCH_PATH") or "/runtimes/echo/invocations"
local sessions = tonumber(os.getenv("CORRAL_BENCH_SESSIONS") or "64")
local prefix = os.getenv("CORRAL_BENCH_PREFIX") or "bench"
local counter = 0
local threads = 0

-- `thread_id` is a global each thread's state gets from `setup` (a local of
-- the same name here would hide it).
function setup(thread)
    thread:set("thread_id", threads)
    threads = threads + 1
end

wrk.method = "POST"
wrk.body = '{"prompt":"hello"}'
wrk.headers["Content-Type"] = "application/json"

function request()
    counter = counter + 1
    local n = (counter * 7) % sessions
    local session = string.format("%s-%d-%038d", prefix, thread_id or 0, n)
    wrk.headers["X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"] = session
    return wrk.format(nil, path)
end
