-- wrk script: etcd v3 put through its HTTP gateway, a new key each request.
local counter = 0
local tid = 0
local next_thread = 1
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end
local function b64(s)
  local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end
local value = b64("some value of a typical size")
function request()
  counter = counter + 1
  local body = string.format('{"key":"%s","value":"%s"}', b64(string.format("t%d-%d", tid, counter)), value)
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
local failures = 0
function response(status, hdrs, body)
  if status ~= 200 then
    failures = failures + 1
    if failures <= 3 then io.stderr:write("non-200: " .. status .. " " .. body .. "\n") end
  end
end
