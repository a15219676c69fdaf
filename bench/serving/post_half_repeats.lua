-- wrk script: POST one image file, every other request with unique bytes after the image's end (decoders
-- ignore them, the content hash does not): half the requests repeat an earlier image, half are new.
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

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")  -- done(): the JSON line
