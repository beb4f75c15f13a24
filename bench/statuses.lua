-- Shared by the wrk scripts here: counts each answer's status code (call count_status from
-- response) and prints the counts as STATUS_COUNTS k=v,... so non-200 answers show in the summary.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function count_status(status) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then for k, v in pairs(s) do agg[k] = (agg[k] or 0) + v end end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  io.write("STATUS_COUNTS " .. table.concat(parts, ",") .. "\n")
end
