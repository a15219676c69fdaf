-- wrk script: POST one image file as multipart/form-data (field "images", as BentoML's image APIs take
-- it); report.lua writes the JSON line.
local path = os.getenv("BENCH_IMAGE")
local file = assert(io.open(path, "rb"))
local image = file:read("*a")
file:close()
local boundary = "----bench-boundary-7d1f3a"
wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
wrk.body = "--" .. boundary .. "\r\n"
  .. 'Content-Disposition: form-data; name="images"; filename="image.jpg"\r\n'
  .. "Content-Type: image/jpeg\r\n\r\n" .. image .. "\r\n--" .. boundary .. "--\r\n"

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")  -- done(): the JSON line
