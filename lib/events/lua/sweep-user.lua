-- A user whose devices may have lapsed (their instance died): the status sweep sends offline if so; the
-- user's lapse index then forgets the user, or looks again when the grace period ends or a heartbeat later.
local at = tonumber(now)
local due = settle(devices, meta, status_route, at, fresh, at)
local base = ev_base(meta)
if base == nil then return false end
if redis.call('HEXISTS', meta, 'on') == 0 then
  redis.call('ZREM', base .. 'users', user)
else
  redis.call('ZADD', base .. 'users', due or (at + tonumber(heartbeat)), user)
end
return false
