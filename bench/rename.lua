-- wrk script: directory.Rename against one directory per wrk thread, each
-- request a new name so every command changes state and produces an event.
-- Env: BENCH_TOKEN (bearer token), BENCH_DIRS (comma-separated ids),
-- BENCH_PREFIX (names start with it; one per run, so that no run renames a
-- directory to a name a sibling kept from an earlier run).
-- The request is built by concatenating parts made once per thread and
-- there is no response() callback (wrk counts non-2xx answers itself): the
-- load generator shares the cores with the servers it measures, so what it
-- spends per request is taken from them.
local dirs = {}
for id in string.gmatch(os.getenv("BENCH_DIRS") or "", "[^,]+") do
  table.insert(dirs, id)
end
local next_thread = 1

function setup(thread)
  thread:set("dir", dirs[next_thread])
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

local counter = 0
local head, body_head

function init(args)
  head = "POST /command/directory.Rename HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nAuthorization: Bearer " .. (os.getenv("BENCH_TOKEN") or "") ..
    "\r\nContent-Type: application/json\r\nContent-Length: "
  body_head = '{"Id":"' .. dir .. '","Name":"' .. (os.getenv("BENCH_PREFIX") or "t") .. tid .. "-"
end

function request()
  counter = counter + 1
  local body = body_head .. counter .. '"}'
  return head .. #body .. "\r\n\r\n" .. body
end
