-- wrk script for the HTTP scenarios. Environment:
--   BENCH_MODE  get | post | mixed
--   BENCH_PATH  request path for get/post (default /)
--   BENCH_BODY  body size in bytes for post (default 65536)
--   BENCH_CPU_EVERY  mixed: every Nth request goes to /cpu (default 10)
-- done() prints one line "BENCHJSON {...}" with totals and latency percentiles
-- in microseconds; in mixed mode also per-class percentiles ("tiny", "cpu"),
-- timed from request() to response() with a monotonic clock (X-T is echoed
-- by the app, so each response names its own start time and class).
local mode = os.getenv("BENCH_MODE") or "get"
local path = os.getenv("BENCH_PATH") or "/"

wrk.path = path
if mode == "post" then
  local size = tonumber(os.getenv("BENCH_BODY") or "65536")
  wrk.method = "POST"
  wrk.body = string.rep("x", size)
  wrk.headers["Content-Type"] = "application/octet-stream"
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

if mode == "mixed" then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  local function now_us()
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
  end
  local every = tonumber(os.getenv("BENCH_CPU_EVERY") or "10")
  local n = 0
  hist_tiny = {}
  hist_cpu = {}
  count_tiny = 0
  count_cpu = 0

  function request()
    n = n + 1
    local cls, p = "t", "/"
    if n % every == 0 then cls, p = "c", "/cpu" end
    return wrk.format("GET", p, { ["X-T"] = cls .. now_us() })
  end

  function response(status, headers, body)
    local tag = headers["X-T"] or headers["x-t"]
    if tag == nil then return end
    local start = tonumber(string.sub(tag, 2))
    if start == nil then return end
    local us = now_us() - start
    if us < 1 then us = 1 end
    local b = math.floor(math.log(us) * 50)
    if string.sub(tag, 1, 1) == "c" then
      hist_cpu[b] = (hist_cpu[b] or 0) + 1
      count_cpu = count_cpu + 1
    else
      hist_tiny[b] = (hist_tiny[b] or 0) + 1
      count_tiny = count_tiny + 1
    end
  end
end

local function merged(name)
  local all = {}
  for _, t in ipairs(threads) do
    local h = t:get(name)
    if h ~= nil then
      for k, v in pairs(h) do all[k] = (all[k] or 0) + v end
    end
  end
  return all
end

local function pct(hist, p)
  local keys, total = {}, 0
  for k, v in pairs(hist) do table.insert(keys, k); total = total + v end
  if total == 0 then return nil, 0 end
  table.sort(keys)
  local want, seen = total * p / 100, 0
  for _, k in ipairs(keys) do
    seen = seen + hist[k]
    if seen >= want then return math.floor(math.exp((k + 0.5) / 50)), total end
  end
  return math.floor(math.exp((keys[#keys] + 0.5) / 50)), total
end

local function num(x)
  if x == nil then return "null" end
  return string.format("%.0f", x)
end

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    '"requests":' .. num(summary.requests),
    '"duration_us":' .. num(summary.duration),
    '"bytes":' .. num(summary.bytes),
    '"err_connect":' .. num(e.connect),
    '"err_read":' .. num(e.read),
    '"err_write":' .. num(e.write),
    '"err_status":' .. num(e.status),
    '"err_timeout":' .. num(e.timeout),
    '"p50_us":' .. num(latency:percentile(50)),
    '"p90_us":' .. num(latency:percentile(90)),
    '"p99_us":' .. num(latency:percentile(99)),
    '"p999_us":' .. num(latency:percentile(99.9)),
    '"mean_us":' .. num(latency.mean),
    '"stdev_us":' .. num(latency.stdev),
    '"max_us":' .. num(latency.max),
  }
  if mode == "mixed" then
    for _, cls in ipairs({ "tiny", "cpu" }) do
      local h = merged("hist_" .. cls)
      local p50, n = pct(h, 50)
      local p99 = pct(h, 99)
      table.insert(parts, '"' .. cls .. '_count":' .. num(n))
      table.insert(parts, '"' .. cls .. '_p50_us":' .. num(p50))
      table.insert(parts, '"' .. cls .. '_p99_us":' .. num(p99))
    end
  end
  io.write("BENCHJSON {" .. table.concat(parts, ",") .. "}\n")
end
