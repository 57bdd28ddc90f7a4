-- The user's status for `user_status_<id>` watchers, kept in the meta hash: `on` while the user has a
-- device or is in the grace period after the last one left, `off` = when that grace period ends. The
-- script that changes the status publishes it, once, on the status route (`!online` / `!offline`).

-- stale: when a sweep could find the user's devices no longer fresh (events' lapse index).
local function online (meta, route, stale)
  local base = ev_base(meta)
  local events = ev_on(base)
  if redis.call('HSETNX', meta, 'on', '1') == 1 then
    redis.call(PUBLISH, route, '!online')
    if events then ev_add(base, 'online', 'u:' .. ev_user(meta)) end
  else
    redis.call('HDEL', meta, 'off')
  end
  if events then redis.call('ZADD', base .. 'users', stale, ev_user(meta)) end
end

-- After devices left or lapsed: with none left, the user goes offline at due (an earlier grace end
-- stands). For the status a device counts while it lapses after fresh (refreshed within the last two
-- heartbeats), as a channel's presence entries do, so an instance's crash shows within 3 heartbeats,
-- the sweep included. Returns when the grace period ends, or false.
local function settle (devices, meta, route, now, fresh, due)
  redis.call('ZREMRANGEBYSCORE', devices, '-inf', now)
  if redis.call('ZCOUNT', devices, '(' .. fresh, '+inf') > 0 or redis.call('HEXISTS', meta, 'on') == 0 then return false end
  local off = tonumber(redis.call('HGET', meta, 'off') or due)
  if off > now then
    redis.call('HSET', meta, 'off', string.format('%.0f', off))
    return string.format('%.0f', off)
  end
  redis.call('HDEL', meta, 'on', 'off')
  redis.call(PUBLISH, route, '!offline')
  local base = ev_base(meta)
  if ev_on(base) then ev_add(base, 'offline', 'u:' .. ev_user(meta), 's', redis.call('HGET', meta, 'seen') or '') end
  if base then redis.call('ZREM', base .. 'users', ev_user(meta)) end
  return false
end
