-- wrk script: POST one image file; report.lua writes the JSON line.
local path = os.getenv("BENCH_IMAGE")
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "image/jpeg"

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")  -- done(): the JSON line
