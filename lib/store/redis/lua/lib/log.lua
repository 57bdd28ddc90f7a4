-- The user's log: a stream with one entry per message (field h: the frame's head) under Redis' own ids,
-- which give the message ids: `<ms>-<n>` is ms * 1000 + n (n stays below 1000). It serves resuming
-- (lib/resume.lua) and holds the last id, so a send to an online user touches no other key of the user's.
--
-- Its lifetime, ttl, is resume.ttl (span) plus a heartbeat's presenceTtl and one heartbeat more. It is
-- renewed by whatever makes a device live (attach, the heartbeat) and by every message no live device
-- took; a message a live device took renews nothing, as that device's last attach or heartbeat renewed
-- the log at most presenceTtl before. So every message stays at least span, and whatever an expired log
-- held is older than span (the extra heartbeat covers the instances' clocks).
--
-- meta `k`: every message with a greater id is in this log or was trimmed from it. Set when the log is
-- born: whatever an earlier log held is older than span.

local function born (meta, meta_ttl, ms, span)
  redis.call('HSET', meta, 'k', string.format('%.0f', (tonumber(ms) - tonumber(span)) * 1000 + 999))
  redis.call('PEXPIRE', meta, meta_ttl)
end

local function as_id (ms, n)
  return ms .. string.rep('0', 3 - #n) .. n
end

-- A stream id's message id.
local function id_of (xid)
  return as_id(string.match(xid, '^(%d+)-(%d+)$'))
end

-- Appends a message's head; returns its id. size: the resume log's size ('0': keep only the last id).
-- MAXLEN ~ keeps at least size + 1 entries, so a device that missed some trimmed ones always finds more
-- than size newer ones. The caller renews the log unless a live device took the message.
local function append (meta, meta_ttl, log, size, ttl, span, head)
  local keep = size == '0' and 0 or size + 1
  local cap = keep == 0 and '=' or '~'
  local xid = redis.call('XADD', log, 'NOMKSTREAM', 'MAXLEN', cap, keep, '*', 'h', head)
  local fresh = not xid
  if fresh then
    xid = redis.call('XADD', log, 'MAXLEN', cap, keep, '*', 'h', head)
    redis.call('PEXPIRE', log, ttl)
  end
  local ms, n = string.match(xid, '^(%d+)-(%d+)$')
  if #n > 3 then
    -- A thousandth message in one ms: it takes the next ms.
    redis.call('XDEL', log, xid)
    ms, n = string.format('%.0f', tonumber(ms) + 1), '0'
    redis.call('XADD', log, 'MAXLEN', cap, keep, ms .. '-0', 'h', head)
  end
  if fresh then born(meta, meta_ttl, ms, span) end
  return as_id(ms, n)
end

-- The last id given out, or nil when the log is gone.
local function last_id (log)
  local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  local xid = top and top[1]
  if not xid then
    if redis.call('EXISTS', log) == 0 then return nil end
    local info = redis.call('XINFO', 'STREAM', log)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then xid = info[i + 1] end
    end
  end
  return id_of(xid)
end

-- The last id, creating the log when it is gone (a device attaches): later messages get greater ids.
local function open (meta, meta_ttl, log, ttl, span)
  local id = last_id(log)
  if not id then
    local ms = string.match(redis.call('XADD', log, 'MAXLEN', '=', 0, '*', 'h', ''), '^(%d+)-')
    born(meta, meta_ttl, ms, span)
    id = as_id(ms, '0')
  end
  redis.call('PEXPIRE', log, ttl)
  return id
end
