-- wrk: the request of CORRAL_BENCH_SCRIPT (a path; none: wrk's own GET),
-- each connection waiting CORRAL_BENCH_PAUSE_MS between its requests.
local script = os.getenv("CORRAL_BENCH_SCRIPT") or ""
if script ~= "" then dofile(script) end
local pause = tonumber(os.getenv("CORRAL_BENCH_PAUSE_MS") or "0")
if pause > 0 then
    function delay() return pause end
end
