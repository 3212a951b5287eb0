-- Requests to random paths read from a file, so the load hits many different rows.
--
-- BENCH_PATHS    one request path per line, optionally followed by a TAB and the number
--                (1-based) of a header line in BENCH_HEADERS that this path must carry
--                (e.g. the token of the row's owner).
-- BENCH_HEADERS  optional; each line holds one or more "Name: value" headers separated by TABs.
-- Headers given to wrk with -H are sent on every request.
-- BENCH_METHOD   optional; the method (default GET).
-- BENCH_BODIES   optional; line n is the body sent with line n of BENCH_PATHS (writes).
--
-- Requests are formatted once per thread (a pool of BENCH_POOL random lines) so that wrk's
-- own cost stays small next to the server's; done() prints one JSON line for the harness.

local thread_counter = 0

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_no", thread_counter)
end

local function read_lines(path)
  local lines = {}
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  for line in f:lines() do
    if #line > 0 then
      lines[#lines + 1] = line
    end
  end
  f:close()
  return lines
end

local pool = {}

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0))
  local paths = read_lines(assert(os.getenv("BENCH_PATHS"), "BENCH_PATHS is not set"))
  local header_sets = {}
  local headers_file = os.getenv("BENCH_HEADERS")
  if headers_file and #headers_file > 0 then
    for i, line in ipairs(read_lines(headers_file)) do
      local set = {}
      for item in string.gmatch(line, "[^\t]+") do
        local name, value = string.match(item, "^([^:]+):%s*(.*)$")
        set[name] = value
      end
      header_sets[i] = set
    end
  end
  local method = os.getenv("BENCH_METHOD")
  if method == nil or #method == 0 then
    method = "GET"
  end
  local bodies = nil
  local bodies_file = os.getenv("BENCH_BODIES")
  if bodies_file and #bodies_file > 0 then
    bodies = read_lines(bodies_file)
  end
  local size = tonumber(os.getenv("BENCH_POOL") or "20000")
  if size > #paths then
    size = #paths
  end
  for i = 1, size do
    local n = math.random(#paths)
    local line = paths[n]
    local path, key = string.match(line, "^([^\t]+)\t?(%d*)$")
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    if key and #key > 0 then
      for name, value in pairs(header_sets[tonumber(key)]) do
        headers[name] = value
      end
    end
    pool[i] = wrk.format(method, path, headers, bodies and bodies[n] or nil)
  end
end

function request()
  return pool[math.random(#pool)]
end

-- BENCH_PACE_MS: when set, this thread sends one request every that many milliseconds in
-- total, whichever of its connections is free (the harness sets it to threads * 1000 / rate).
-- Send times are slots on an absolute clock, so the rate does not drift with the latencies;
-- a thread that falls behind starts again from now instead of sending a burst. wrk measures
-- each latency from the moment the request is written, after the delay.
local pace_ms = tonumber(os.getenv("BENCH_PACE_MS") or "")
if pace_ms and pace_ms > 0 then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]])
  local CLOCK_MONOTONIC = 1
  local now_ts = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, now_ts)
    return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
  end
  local next_slot = 0

  function delay()
    local now = now_ms()
    if next_slot < now then
      next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + pace_ms
    return wait
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nBENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout
  ))
end
