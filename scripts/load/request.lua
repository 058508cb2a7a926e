-- wrk script for one endpoint: method, body file and token from the environment; prints
-- one JSON line with throughput and latency percentiles (ms) when the run ends.
local body_file = os.getenv("LOAD_BODY_FILE")
wrk.method = os.getenv("LOAD_METHOD") or "GET"
if body_file and body_file ~= "" then
  local handle = assert(io.open(body_file, "r"))
  wrk.body = handle:read("*a")
  handle:close()
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
