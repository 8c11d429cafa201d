-- wrk.lua: the request generator for every wrk run of the benchmarks (wrk 4 with LuaJIT).
-- Settings come from the environment:
--   BENCH_MODE   get | track | batch | send | flow
--   BENCH_AUTH   the Authorization header value (Basic ... for track/batch, Bearer ... for send)
--   BENCH_BATCH  events per /v1/batch body (default 100)
--   BENCH_RUN    a prefix making messageIds unique across runs (default "r")
--   BENCH_PATH   the request path (defaults: / for get, /v1/track, /v1/batch, /send,
--                /v1/track for flow)
--   BENCH_DELAY_MS  if > 0, each connection waits this long between requests (paced load)
--   BENCH_USER_OFFSET  where in the 10,000 user ids this process starts (default 0): several
--                wrk processes at once (bench/pg.sh, one per node) start apart, as users
--                behind a load balancer do, instead of sending the same user to every
--                node at the same moment
-- track/batch: a ~700-byte Segment track event per event, with a messageId unique per
-- event (run prefix, wrk thread number, counter). send: a Courier v2 message with inline
-- content whose body is "ts:<send time in microseconds>" (CLOCK_REALTIME), so the sink
-- can compute request-to-delivery latency. flow: the track event of track, named
-- "Flow Event", with properties.ts = the send time in microseconds (a string of digits:
-- a 16-digit number would not survive cJSON's %1.15g), which bench/flow.sh's template
-- renders into the delivered body as "ts:<digits>" for the sink.
-- done() prints one machine-readable line starting with "WRK " (see bench/lib.sh).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk, bench_timespec *ts);
]]
local tsbuf = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(0, tsbuf) -- CLOCK_REALTIME, as the sink uses
  return tonumber(tsbuf.tv_sec) * 1000000 + math.floor(tonumber(tsbuf.tv_nsec) / 1000)
end

local mode = os.getenv("BENCH_MODE") or "get"
local auth = os.getenv("BENCH_AUTH")
local batch_n = tonumber(os.getenv("BENCH_BATCH") or "100")
local run = os.getenv("BENCH_RUN") or "r"
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local user_offset = tonumber(os.getenv("BENCH_USER_OFFSET") or "0")
local default_paths = { get = "/", track = "/v1/track", batch = "/v1/batch", send = "/send",
  flow = "/v1/track" }
local path = os.getenv("BENCH_PATH") or default_paths[mode]

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

-- One Segment track event, ~700 bytes; %s are the messageId and the userId.
local event_tmpl = '{"type":"track","event":"Bench %s","userId":"%s","anonymousId":"' ..
  '507f191e810c19729de860ea","messageId":"%s","timestamp":"2026-01-15T10:20:30.123Z",' ..
  '"context":{"ip":"203.0.113.42","locale":"en-US",' ..
  '"library":{"name":"analytics-node","version":"6.2.0"},' ..
  '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) ' ..
  'Chrome/120.0 Safari/537.36","page":{"path":"/checkout","referrer":"https://example.com/cart",' ..
  '"title":"Checkout","url":"https://example.com/checkout"}},' ..
  '"properties":{"order_id":"ord_%s","revenue":49.99,"currency":"USD","plan":"pro",' ..
  '"items":[{"sku":"sku-1001","name":"Widget","price":19.99,"quantity":1},' ..
  '{"sku":"sku-1002","name":"Gadget","price":29.99,"quantity":1}]}}'

-- The flow event: the same shape and size, event "Flow Event", properties.ts first.
-- %s are the userId, the messageId, the send time and the order id.
local flow_tmpl = event_tmpl:gsub('"event":"Bench %%s","userId":"%%s"', '"event":"Flow Event","userId":"%%s"', 1)
  :gsub('"properties":{', '"properties":{"ts":"%%s",', 1)

local headers = {}

function init(args)
  if auth and auth ~= "" then headers["Authorization"] = auth end
  if mode ~= "get" then headers["Content-Type"] = "application/json" end
  if mode == "get" then
    fixed = wrk.format("GET", path, headers)
  end
end

local function next_id()
  counter = counter + 1
  return run .. "-" .. tostring(tid) .. "-" .. tostring(counter)
end

local function event(kind)
  local id = next_id()
  return string.format(event_tmpl, kind, "u" .. tostring((counter + user_offset) % 10000), id, id)
end

function request()
  if mode == "get" then
    return fixed
  elseif mode == "track" then
    return wrk.format("POST", path, headers, event("Track"))
  elseif mode == "batch" then
    local parts = {}
    for i = 1, batch_n do parts[i] = event("Batch") end
    return wrk.format("POST", path, headers, '{"batch":[' .. table.concat(parts, ",") .. ']}')
  elseif mode == "flow" then
    local id = next_id()
    return wrk.format("POST", path, headers,
      string.format(flow_tmpl, "u" .. tostring(counter % 10000), id, string.format("%d", now_us()), id))
  elseif mode == "send" then
    local id = next_id()
    local body = string.format(
      '{"message":{"to":{"user_id":"u%s"},"content":{"title":"Bench %s","body":"ts:%d"},' ..
      '"routing":{"method":"single","channels":["webhook"]}}}', id, id, now_us())
    return wrk.format("POST", path, headers, body)
  end
end

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d bad_status=%d connect=%d read=%d write=%d " ..
    "timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
