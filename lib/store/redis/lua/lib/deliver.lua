-- One message to one user, `head .. id .. tail`: returns { id, queued (1|0) }.
--
-- The message is queued unless an instance received it AND the user has a device whose instance is alive:
-- a crashed instance's subscriber is gone at once when the kernel closes its socket, and a frozen or
-- cut-off one stops refreshing its devices, which lapse after 3 heartbeats.
--
-- Every message also goes to the user's resume log (lib/resume.lua), trimmed by Redis in whole stream
-- nodes (MAXLEN ~): cheap, and a device still gets at most the newest `log_size`. The first message of a
-- user's meta starts a new chain (its predecessor is itself minus one, and it is `born`): a log left from
-- before the meta expired is dropped, as nothing could tell its gap.
local function deliver (meta, queue, devices, log, now, queue_max, queue_ttl, meta_ttl, log_size, log_ttl, tail, route, head)
  local last = tonumber(redis.call('HGET', meta, 'seq') or '0')
  local id = math.max(last + 1, tonumber(now) * 1000)
  local sid = string.format('%.0f', id)
  if last == 0 then
    last = id - 1
    redis.call('HSET', meta, 'seq', sid, 'born', sid)
    redis.call('DEL', log)
  else
    redis.call('HSET', meta, 'seq', sid)
  end
  local entry = sid .. '|' .. head .. sid .. tail

  if log_size ~= '0' then
    local xid = string.format('%.0f-%.0f', math.floor(id / 1000), id % 1000)
    redis.call('XADD', log, 'MAXLEN', '~', log_size, xid, 'p', string.format('%.0f', last), 'm', entry)
    redis.call('PEXPIRE', log, log_ttl)
  end
  redis.call('PEXPIRE', meta, meta_ttl)

  local receivers = redis.call(PUBLISH, route, entry)
  if tonumber(queue_max) == 0 then return { sid, 0 } end
  if receivers > 0 and redis.call('ZCOUNT', devices, '(' .. now, '+inf') > 0 then return { sid, 0 } end
  redis.call('ZADD', queue, id, entry)
  trim(queue, meta, tonumber(queue_max), queue_ttl)
  return { sid, 1 }
end
