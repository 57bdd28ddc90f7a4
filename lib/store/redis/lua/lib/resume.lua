-- Reads the newest `size` log entries (lib/log.lua) after `since`: every message, or recovered '0' when
-- some may be gone: more than `size` newer (MAXLEN ~ keeps size + 1, so a trimmed one leaves that many),
-- older than the cutoff, or from before the log was born (since below meta `k`). No meta `k` means
-- Redis lost the user's data: a device that stayed connected (`connected`) missed nothing from before
-- the loss, so for it what the log holds is complete.
local function resume (meta, log, since, connected, cutoff, size, span, tail)
  local k = redis.call('HGET', meta, 'k')
  if not k then return connected and '1' or '0', {} end
  if since < tonumber(k) and not connected then return '0', {} end
  local last = last_id(log)
  if not last then
    -- The log expired: every message it held is older than span.
    local t = redis.call('TIME')
    local gone = (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(span)) * 1000 + 999
    return since >= gone and '1' or '0', {}
  end
  if since >= tonumber(last) then return '1', {} end
  local from = string.format('(%.0f-%.0f', math.floor(since / 1000), since % 1000)
  local rows = redis.call('XREVRANGE', log, '+', from, 'COUNT', size + 1)
  if #rows == 0 or #rows > size then return '0', {} end
  if tonumber(id_of(rows[#rows][1])) <= cutoff then return '0', {} end
  local missed = {}
  for i = #rows, 1, -1 do
    local id = id_of(rows[i][1])
    missed[#missed + 1] = id .. '|' .. rows[i][2][2] .. id .. tail
  end
  return '1', missed
end
