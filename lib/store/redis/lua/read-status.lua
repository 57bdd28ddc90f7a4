local at = tonumber(now)
local due = settle(devices, meta, status_route, at, fresh, at)
return { redis.call('ZCARD', devices), redis.call('HGET', meta, 'seen'), redis.call('HEXISTS', meta, 'on'), due }
