-- wrk script: etcd v3 put through its HTTP gateway, a new key each request.
-- Keys and values are base64 in the gateway's JSON. Each key is written
-- directly as base64 text (a thread letter and the counter in base-64
-- digits: valid base64 of distinct bytes), so no encoding runs per request;
-- as in rename.lua, the request is concatenated from parts made once and
-- there is no response() callback.
local next_thread = 1
function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
-- base64 of "some value of a typical size"
local VALUE = "c29tZSB2YWx1ZSBvZiBhIHR5cGljYWwgc2l6ZQ=="
local counter = 0
local head, key_head

function init(args)
  head = "POST /v3/kv/put HTTP/1.1\r\nHost: " .. wrk.host .. ":" .. wrk.port ..
    "\r\nContent-Type: application/json\r\nContent-Length: "
  key_head = '{"key":"dA' .. B64:sub(tid + 1, tid + 1)
end

-- @n in 9 base-64 digits: with the 3 characters before, 12 characters.
local function digits(n)
  local out = {}
  for i = 9, 1, -1 do
    local d = n % 64
    out[i] = B64:sub(d + 1, d + 1)
    n = (n - d) / 64
  end
  return table.concat(out)
end

function request()
  counter = counter + 1
  local body = key_head .. digits(counter) .. '","value":"' .. VALUE .. '"}'
  return head .. #body .. "\r\n\r\n" .. body
end
