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
-- LOAD_OFFSETS=N pages through a list instead: each request asks for `offset=K`, K
-- cycling through 0..N-1 across all LOAD_THREADS threads, so that consecutive requests
-- never ask for the same page.
local offsets = tonumber(os.getenv("LOAD_OFFSETS") or "")
local stride = tonumber(os.getenv("LOAD_THREADS") or "1")
local counter = 0
local unique_body = wrk.body and wrk.body:find("{{n}}", 1, true)
if unique_body or offsets then
  function request()
    counter = counter + 1
    local path, body = nil, nil
    if unique_body then
      local unique = string.format("%d_%d", thread_number or 0, counter)
      body = (wrk.body:gsub("{{n}}", unique))
    end
    if offsets then
      local offset = ((counter - 1) * stride + (thread_number or 1) - 1) % offsets
      local separator = wrk.path:find("?", 1, true) and "&" or "?"
      path = wrk.path .. separator .. "offset=" .. offset
    end
    return wrk.format(nil, path, nil, body)
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
