-- A channel's presence set: entries (ZSET `<user>|<entry>` → lapse time), members (HASH user → live
-- entries, 0 during grace), pending (ZSET user → end of grace). A user joins when their first entry
-- arrives and is not in grace; leaves when a sweep finds their grace over. Entries of a crashed instance
-- lapse and are swept by any instance that beats or reads the set. join_head '' means no join/leave frames.
now = tonumber(now)
-- Server events: the channel's first entry (occupied), its last gone (vacated), and with join/leave frames
-- the same joins and leaves; EV_CHANNEL is the channel's name, read back from its key.
local EV_BASE = ev_base(entries)
local EV_ON = ev_on(EV_BASE)
local EV_CHANNEL = string.match(entries, '{c:(.*)}:') or ('user_status_' .. (string.match(entries, '{u:(.*)}s:') or ''))
local function ev (kind, ...)
  if EV_ON then ev_add(EV_BASE, kind, 'c:' .. EV_CHANNEL, ...) end
end
local function emit (head, user)
  if join_head ~= '' then
    redis.call(PUBLISH, route, head .. user .. tail)
    ev(head == join_head and 'join' or 'leave', 'u', user)
  end
end
local function add (user, entry, lapse)
  if redis.call('ZADD', entries, lapse, user .. '|' .. entry) == 0 then return end
  if EV_ON and redis.call('ZCARD', entries) == 1 then ev('occupied') end
  if user ~= '' and redis.call('HINCRBY', members, user, 1) == 1 and redis.call('ZREM', pending, user) == 0 then emit(join_head, user) end
end
local function gone (user, due)
  if redis.call('HINCRBY', members, user, -1) <= 0 then
    redis.call('HSET', members, user, 0)
    redis.call('ZADD', pending, due, user)
  end
end
local function sweep ()
  local lapsed = redis.call('ZRANGEBYSCORE', entries, '-inf', now)
  for _, e in ipairs(lapsed) do
    redis.call('ZREM', entries, e)
    local user = string.match(e, '^([^|]*)|')
    if user ~= '' then gone(user, now) end
  end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', pending, '-inf', now)) do
    redis.call('ZREM', pending, user)
    if tonumber(redis.call('HGET', members, user) or '0') <= 0 then
      redis.call('HDEL', members, user)
      emit(leave_head, user)
    end
  end
  if #lapsed > 0 and EV_ON and redis.call('ZCARD', entries) == 0 then ev('vacated') end
  local first = redis.call('ZRANGE', pending, 0, 0, 'WITHSCORES')
  return first[2] or false
end
-- The events' lapse index: a channel with entries or pending leaves is looked at once its entries could
-- have lapsed, in case no instance that subscribes to it is left to sweep it.
local function ev_track ()
  if not EV_ON then return end
  if redis.call('ZCARD', entries) + redis.call('ZCARD', pending) == 0 then
    redis.call('ZREM', EV_BASE .. 'channels', EV_CHANNEL)
  else
    redis.call('ZADD', EV_BASE .. 'channels', now + tonumber(ttl), EV_CHANNEL)
  end
end
local function keep ()
  local lifetime = tonumber(ttl) + tonumber(grace)
  redis.call('PEXPIRE', entries, lifetime)
  redis.call('PEXPIRE', members, lifetime)
  redis.call('PEXPIRE', pending, lifetime)
  ev_track()
end
