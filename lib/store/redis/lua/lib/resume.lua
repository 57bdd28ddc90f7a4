-- The resume log is a stream: one entry per message, under the stream id `<id / 1000>-<id % 1000>` (so
-- stream order is id order), with fields p (the id of the user's previous message) and m (the entry).
-- Whether a device that saw `since` can get everything after it is read off the oldest entry after
-- `since`: complete when that entry's predecessor is at or below `since`. No bookkeeping of what was
-- trimmed or expired: a gap shows in the chain.
--
-- Reads the newest `size` entries after `since`: every message, or recovered '0' when some are gone (more
-- than `size`, older than the cutoff, or a broken chain). A device that stayed connected while Redis lost
-- its data (`connected`) missed nothing from before the loss: for it a chain that starts with the user's
-- first message since then (`born`) is complete.
local function resume (meta, log, since, connected, cutoff, size)
  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
  if seq == 0 then return connected and '1' or '0', {} end
  if since >= seq then return '1', {} end
  local from = string.format('(%.0f-%.0f', math.floor(since / 1000), since % 1000)
  local rows = redis.call('XREVRANGE', log, '+', from, 'COUNT', size + 1)
  if #rows == 0 or #rows > size then return '0', {} end
  local oldest = rows[#rows]
  local ms, n = string.match(oldest[1], '^(%d+)-(%d+)$')
  if tonumber(ms) * 1000 + tonumber(n) <= cutoff then return '0', {} end
  local before = tonumber(oldest[2][2])
  if before > since and not (connected and before + 1 == tonumber(redis.call('HGET', meta, 'born') or '0')) then
    return '0', {}
  end
  local missed = {}
  for i = #rows, 1, -1 do missed[#missed + 1] = rows[i][2][4] end
  return '1', missed
end
