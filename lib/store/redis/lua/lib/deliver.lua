-- One message to one user, `head .. id .. tail`: returns { id, queued (1|0) }.
--
-- The message is queued unless an instance received it AND the user has a device whose instance is alive:
-- a crashed instance's subscriber is gone at once when the kernel closes its socket, and a frozen or
-- cut-off one stops refreshing its devices, which lapse after 3 heartbeats. Every message goes to the
-- user's log first (lib/log.lua), which gives its id.
--
-- The log's and the meta's lifetimes are renewed only when no live device took the message: a live
-- device's attach or heartbeat renewed them (lib/log.lua), and the meta outlives the log.
local function deliver (meta, queue, devices, log, now, queue_max, queue_ttl, meta_ttl, log_size, log_ttl, log_span, tail, route, head)
  local id = append(meta, meta_ttl, log, log_size, log_ttl, log_span, head)
  local entry = id .. '|' .. head .. id .. tail
  local receivers = redis.call(PUBLISH, route, entry)
  if receivers > 0 and redis.call('ZCOUNT', devices, '(' .. now, '+inf') > 0 then return { id, 0 } end
  redis.call('PEXPIRE', log, log_ttl)
  redis.call('PEXPIRE', meta, meta_ttl)
  if tonumber(queue_max) == 0 then return { id, 0 } end
  redis.call('ZADD', queue, id, entry)
  trim(queue, meta, tonumber(queue_max), queue_ttl)
  return { id, 1 }
end
