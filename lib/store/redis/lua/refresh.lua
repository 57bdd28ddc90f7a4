-- ZADD, not ZADD XX: if Redis lost its data, the heartbeat puts the devices back.
for _, id in ipairs(ids) do redis.call('ZADD', devices, lapse, id) end
redis.call('PEXPIRE', devices, presence_ttl)
redis.call('PEXPIRE', log, log_ttl)
redis.call('HSET', meta, 'seen', now)
redis.call('PEXPIRE', meta, meta_ttl)
online(meta, status_route, tonumber(lapse) - tonumber(presence_ttl) / 3)
