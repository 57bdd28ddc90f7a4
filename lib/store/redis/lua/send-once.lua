-- A repeat while the key's record lives sends nothing and returns the first reply.
local done = redis.call('GET', once)
if done then
  local bar = string.find(done, '|', 1, true)
  return { string.sub(done, 1, bar - 1), tonumber(string.sub(done, bar + 1)) }
end
local reply = deliver(meta, queue, devices, log, now, queue_max, queue_ttl, meta_ttl, log_size, log_ttl, log_span, tail, route, head)
redis.call('SET', once, reply[1] .. '|' .. reply[2], 'PX', once_ttl)
return reply
