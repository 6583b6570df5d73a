-- wrk script: directory.Rename against one directory per wrk thread, each
-- request a new name so every command changes state and produces an event.
-- Env: BENCH_TOKEN (bearer token), BENCH_DIRS (comma-separated ids),
-- BENCH_PREFIX (names start with it; one per run, so that no run renames a
-- directory to a name a sibling kept from an earlier run).
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
local prefix = os.getenv("BENCH_PREFIX") or "t"
local headers = {
  ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or ""),
  ["Content-Type"] = "application/json",
}

function request()
  counter = counter + 1
  local body = string.format('{"Id":"%s","Name":"%s%d-%d"}', dir, prefix, tid, counter)
  return wrk.format("POST", "/command/directory.Rename", headers, body)
end

local failures = 0
function response(status, hdrs, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("non-200: " .. status .. " " .. body .. "\n")
    end
  end
end
