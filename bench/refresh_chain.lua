-- wrk script: refresh sessions as their clients do, each presenting the newest refresh token
-- of its session, so every request is a rotation of a current token (the path reuse detection
-- takes). TOKENS holds the sessions' refresh tokens, separated by spaces; each answer's new
-- refresh token goes back in line. With more sessions than connections (one request in flight
-- per connection), a token is always free. Status codes are printed as STATUS_COUNTS k=v,...
-- Usage: TOKENS="$r1 $r2 ..." wrk -s bench/refresh_chain.lua http://127.0.0.1:8000/api/token/refresh/
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "statuses.lua")

local free = {}
local base_init = init
function init(args)
  base_init(args)
  for t in string.gmatch(os.getenv("TOKENS") or "", "%S+") do table.insert(free, t) end
end

function request()
  -- Never empty while sessions outnumber connections; an empty line ends
  -- in a 400, counted rather than hidden.
  local token = table.remove(free, 1) or ""
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" },
    '{"refresh":"' .. token .. '"}')
end

function response(status, headers, body)
  count_status(status)
  local token = string.match(body, '"refresh"%s*:%s*"([^"]+)"')
  if token then table.insert(free, token) end
end
