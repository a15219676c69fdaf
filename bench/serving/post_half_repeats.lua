-- wrk script: POST one image file, every other request with unique bytes after the image's end (decoders
-- ignore them, the content hash does not): half the requests repeat an earlier image, half are new.
-- Reports P50/P95/P99 latency and throughput as JSON on the last line.
local path = os.getenv("BENCH_IMAGE")
local file = assert(io.open(path, "rb"))
local image = file:read("*a")
file:close()
local counter = 0
local threads = 0
local run = os.time()  -- each wrk run sends new suffixes, never an earlier run's

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)  -- a global in that thread's Lua state: no two threads send the same suffix
end

function request()
  counter = counter + 1
  local body = image
  if counter % 2 == 0 then
    body = image .. string.format("%d-%d-%d", run, id, counter)
  end
  return wrk.format("POST", nil, {["Content-Type"] = "image/jpeg"}, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.2f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
