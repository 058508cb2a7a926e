-- wrk script for one endpoint: method, body file and token from the environment; prints
-- one JSON line with throughput and latency percentiles (ms) when the run ends.
local body_file = os.getenv("LOAD_BODY_FILE")
wrk.method = os.getenv("LOAD_METHOD") or "GET"
if body_file and body_file ~= "" then
  local handle = assert(io.open(body_file, "r"))
  wrk.body = handle:read("*a")
  handle:close()
end
-- A body holding {{n}} gets a number unique to each request in its place (thread and
-- count), so that no two requests are alike (nothing a server remembers can answer them).
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
local counter = 0
if wrk.body and wrk.body:find("{{n}}", 1, true) then
  function request()
    counter = counter + 1
    local unique = string.format("%d_%d", thread_number or 0, counter)
    return wrk.format(nil, nil, nil, (wrk.body:gsub("{{n}}", unique)))
  end
end
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("MTGS_TOKEN") or "")
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "rps": %.1f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
