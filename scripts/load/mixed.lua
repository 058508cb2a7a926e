-- wrk script for the mixed run: the seed's three user profiles in one run, by request
-- share: read-heavy 60% (conflicts and tools listings), write-heavy 30% (CI gate checks
-- and re-registrations), analysis 10% (environment health, which aggregates every live
-- conflict). Bodies come from files named in the environment; prints one JSON line.
local function read(path)
  local handle = assert(io.open(path, "r"))
  local text = handle:read("*a")
  handle:close()
  return text
end
local gate = read(os.getenv("LOAD_GATE_BODY"))
local register = read(os.getenv("LOAD_REGISTER_BODY"))
local headers = {
  ["Authorization"] = "Bearer " .. (os.getenv("MTGS_TOKEN") or ""),
  ["Content-Type"] = "application/json",
}
local counter = 0

function request()
  counter = counter + 1
  local slot = counter % 10
  if slot < 4 then
    return wrk.format("GET", "/v1/environments/prod/conflicts?severity=high", headers)
  elseif slot < 6 then
    return wrk.format("GET", "/v1/tools?environment=prod&status=pending_approval", headers)
  elseif slot < 8 then
    return wrk.format("POST", "/v1/webhooks/ci-check", headers, gate)
  elseif slot < 9 then
    return wrk.format("POST", "/v1/tools", headers, register)
  else
    return wrk.format("GET", "/v1/environments/prod/health", headers)
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "rps": %.1f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "socket_errors": %d, "status_errors": %d}\n',
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout, errors.status))
end
