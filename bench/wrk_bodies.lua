-- POST pre-made request bodies with wrk, one body per line of a file.
--
--   wrk -t T -c C -d D -s bench/wrk_bodies.lua URL -- FILE T once|cycle
--
-- Thread i of T sends lines i, i+T, i+2T, ... so no two requests share a body.
-- "once" stops a thread when its lines run out (every request a distinct
-- transaction); "cycle" starts again from its first line. done() prints one
-- JSON line (prefixed "WRK_JSON ") with counts per HTTP status and latency
-- percentiles in microseconds, read by bench/loadgen.py.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  cycle = args[3] == "cycle"
  bodies = {}
  local line_no = 0
  for line in io.lines(path) do
    if line ~= "" then
      if line_no % nthreads == id then
        bodies[#bodies + 1] = line
      end
      line_no = line_no + 1
    end
  end
  position = 0
  statuses = {}
  exhausted = 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  position = position + 1
  if position > #bodies then
    if not cycle then
      exhausted = 1
      wrk.thread:stop()
    end
    position = 1
  end
  return wrk.format("POST", nil, headers, bodies[position])
end

function response(status, _headers, _body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, _requests)
  local merged = {}
  local ran_out = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
    ran_out = ran_out + thread:get("exhausted")
  end
  local parts = {}
  for status, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%s":%d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"statuses":{%s},"errors":%d,"timeouts":%d,'
      .. '"threads_ran_out":%d,"mean_us":%.1f,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, table.concat(parts, ","),
    e.connect + e.read + e.write, e.timeout, ran_out,
    latency.mean, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max
  ))
end
