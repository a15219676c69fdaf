-- wrk script: GET; report.lua writes the JSON line.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")  -- done(): the JSON line
