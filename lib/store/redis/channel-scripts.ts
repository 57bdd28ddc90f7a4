// Lua for channels: publishing with history, and presence sets. Each script touches only the keys of one
// channel (hash tag `{c:<channel>}`), so it runs on one Redis Cluster slot; PUBLISH takes no key. Server
// events beside a presence transition: lib/events/lua.ts (skipped on a Cluster).
import { eventsLua } from '../../events/lua.ts'

/**
 * Keeps the message when the channel has history (size ≠ '0': the stream id is the message id, else `id`
 * is) and publishes `sender .. head .. id .. tail`, in one step. Returns the id.
 */
const keepAndPublish = `
local function publish (stream, route, head, tail, size, ttl, sender, id)
  if size ~= '0' then
    id = redis.call('XADD', stream, 'MAXLEN', '~', size, '*', 'h', head)
    redis.call('PEXPIRE', stream, ttl)
  end
  redis.call('PUBLISH', route, sender .. head .. id .. tail)
  return id
end
`

/** KEYS: history stream. ARGV: route, head, tail, size, ttl, sender prefix ('' or `~<sender>|`). */
export const publish = {
  numberOfKeys: 1,
  lua: keepAndPublish + `
return publish(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], '')
`
}

/**
 * publish, once per idempotency key. KEYS: the key's record, history stream. ARGV: route, head, tail,
 * size ('0': no history), ttl, sender prefix, id (without history), how long the record is kept (ms).
 * A repeat while the record lives publishes nothing and returns the first id.
 */
export const publishOnce = {
  numberOfKeys: 2,
  lua: keepAndPublish + `
local done = redis.call('GET', KEYS[1])
if done then return done end
local id = publish(KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
redis.call('SET', KEYS[1], id, 'PX', ARGV[8])
return id
`
}

/**
 * KEYS: history stream. ARGV: since ('' for everything kept).
 * Returns { 1, entries } or { 0 } when since is no longer (or never was) in the stream: never a partial list.
 */
export const history = {
  numberOfKeys: 1,
  lua: `
if ARGV[1] == '' then return { 1, redis.call('XRANGE', KEYS[1], '-', '+') } end
-- An id Redis cannot parse (too big) is one we never gave out: not recovered, rather than an error.
local hit = redis.pcall('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if hit.err ~= nil or #hit == 0 then return { 0 } end
return { 1, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+') }
`
}

/*
 * Presence sets. KEYS: entries (ZSET `<user>|<entry>` → lapse time), members (HASH user → live entries,
 * 0 during grace), pending (ZSET user → end of grace).
 * ARGV 1-7: now, route, join head ('' = no events), leave head, tail, entry ttl, grace.
 * A user joins when their first entry arrives and is not in grace; leaves when a sweep finds their grace
 * over. Entries of a crashed instance lapse and are swept by any instance that beats or reads the set.
 */
export const presence = eventsLua + `
local now = tonumber(ARGV[1])
-- Server events: the channel's first entry (occupied), its last gone (vacated), and with join/leave frames
-- the same joins and leaves; EV_CHANNEL is the channel's name, read back from its key.
local EV_BASE = ev_base(KEYS[1])
local EV_ON = ev_on(EV_BASE)
local EV_CHANNEL = string.match(KEYS[1], '{c:(.*)}:') or ('user_status_' .. (string.match(KEYS[1], '{u:(.*)}s:') or ''))
local function ev (kind, ...)
  if EV_ON then ev_add(EV_BASE, kind, 'c:' .. EV_CHANNEL, ...) end
end
local function emit (head, user)
  if ARGV[3] ~= '' then
    redis.call('PUBLISH', ARGV[2], head .. user .. ARGV[5])
    ev(head == ARGV[3] and 'join' or 'leave', 'u', user)
  end
end
local function add (user, entry, lapse)
  if redis.call('ZADD', KEYS[1], lapse, user .. '|' .. entry) == 0 then return end
  if EV_ON and redis.call('ZCARD', KEYS[1]) == 1 then ev('occupied') end
  if user ~= '' and redis.call('HINCRBY', KEYS[2], user, 1) == 1 and redis.call('ZREM', KEYS[3], user) == 0 then emit(ARGV[3], user) end
end
local function gone (user, due)
  if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
    redis.call('HSET', KEYS[2], user, 0)
    redis.call('ZADD', KEYS[3], due, user)
  end
end
local function sweep ()
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, e in ipairs(lapsed) do
    redis.call('ZREM', KEYS[1], e)
    local user = string.match(e, '^([^|]*)|')
    if user ~= '' then gone(user, now) end
  end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
    redis.call('ZREM', KEYS[3], user)
    if tonumber(redis.call('HGET', KEYS[2], user) or '0') <= 0 then
      redis.call('HDEL', KEYS[2], user)
      emit(ARGV[4], user)
    end
  end
  if #lapsed > 0 and EV_ON and redis.call('ZCARD', KEYS[1]) == 0 then ev('vacated') end
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return first[2] or false
end
-- The events' lapse index: a channel with entries or pending leaves is looked at once its entries could
-- have lapsed, in case no instance that subscribes to it is left to sweep it.
local function ev_track ()
  if not EV_ON then return end
  if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[3]) == 0 then
    redis.call('ZREM', EV_BASE .. 'channels', EV_CHANNEL)
  else
    redis.call('ZADD', EV_BASE .. 'channels', now + tonumber(ARGV[6]), EV_CHANNEL)
  end
end
local function keep ()
  local ttl = tonumber(ARGV[6]) + tonumber(ARGV[7])
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  ev_track()
end
`

/** ARGV 8-9: user ('' for anonymous), entry. */
export const enter = {
  numberOfKeys: 3,
  lua: presence + `
add(ARGV[8], ARGV[9], now + tonumber(ARGV[6]))
keep()
`
}

/** ARGV 8-9: user, entry. Returns the end of the next grace period, or false. */
export const exit = {
  numberOfKeys: 3,
  lua: presence + `
if redis.call('ZREM', KEYS[1], ARGV[8] .. '|' .. ARGV[9]) == 1 then
  if EV_ON and redis.call('ZCARD', KEYS[1]) == 0 then ev('vacated') end
  if ARGV[8] ~= '' then gone(ARGV[8], now + tonumber(ARGV[7])) end
end
local upcoming = sweep()
keep()
return upcoming
`
}

/** ARGV 8…: user, entry pairs. ZADD, not XX: if Redis lost the set, the heartbeat rebuilds it. */
export const beat = {
  numberOfKeys: 3,
  lua: presence + `
local lapse = now + tonumber(ARGV[6])
for i = 8, #ARGV, 2 do add(ARGV[i], ARGV[i + 1], lapse) end
local upcoming = sweep()
keep()
return upcoming
`
}

/** Returns { members, entries } after a sweep. */
export const read = {
  numberOfKeys: 3,
  lua: presence + `
sweep()
ev_track()
return { redis.call('HKEYS', KEYS[2]), redis.call('ZCARD', KEYS[1]) }
`
}
