// Lua run atomically inside Redis: each decision that must not race (deliver or queue, device limit and
// queue take) is one script, one round trip. Scripts touch only keys of one user (one cluster slot).

const trimQueue = `
local function trim (queue, meta, max, ttl)
  local over = redis.call('ZCARD', queue) - max
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', queue, 0, over - 1)
    redis.call('HINCRBY', meta, 'dropped', over)
  end
  redis.call('PEXPIRE', queue, ttl)
end
`

/**
 * Reads the resume log after `since`: every message, or recovered '0' when some are gone. A device that
 * stayed connected while Redis lost its data (`connected`) missed nothing from before the loss, so for it
 * a log complete since the user's meta was born (floor = born - 1) is enough.
 */
const resumeFrom = `
local function resume (meta, log, since, connected, cutoff)
  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
  if seq == 0 then return connected and '1' or '0', {} end
  local floor = tonumber(redis.call('HGET', meta, 'floor') or '0')
  -- Messages older than the log's ttl are dropped here, when read, rather than on every send.
  local aged = redis.call('ZREVRANGEBYSCORE', log, cutoff, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #aged > 0 then
    redis.call('ZREMRANGEBYSCORE', log, '-inf', aged[2])
    if tonumber(aged[2]) > floor then
      floor = tonumber(aged[2])
      redis.call('HSET', meta, 'floor', aged[2])
    end
  end
  if redis.call('EXISTS', log) == 0 then return since >= seq and '1' or '0', {} end
  if since < floor then
    if not (connected and floor + 1 == tonumber(redis.call('HGET', meta, 'born') or '0')) then return '0', {} end
    since = floor
  end
  return '1', redis.call('ZRANGEBYSCORE', log, '(' .. string.format('%.0f', since), '+inf')
end
`

/**
 * KEYS: meta, queue, devices, log. ARGV: now ms, queue max, queue ttl, meta ttl, log size, log ttl (the
 * same for every send of a batch), route, frame head. Returns { id, queued (1|0) }.
 *
 * The message is queued unless an instance received it AND the user has a device whose instance is alive:
 * a crashed instance's subscriber is gone at once when the kernel closes its socket, and a frozen or
 * cut-off one stops refreshing its devices, which lapse after 3 heartbeats.
 *
 * Every message also goes to the user's resume log. The meta field `floor` is the newest id known to be
 * gone from the log (trimmed, expired, or from before the user's meta existed): a device resuming from an
 * id at or above the floor gets every message it missed; below it, the script says so. Trimming by age
 * happens when the log is read (resumeFrom), so a send costs no age scan.
 */
export const send = {
  numberOfKeys: 4,
  shared: 6,
  lua: trimQueue + `
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local id = math.max(last + 1, now * 1000)
local sid = string.format('%.0f', id)
redis.call('HSET', KEYS[1], 'seq', sid)
if last == 0 then redis.call('HSET', KEYS[1], 'floor', string.format('%.0f', id - 1), 'born', sid) end
local entry = sid .. '|' .. ARGV[8] .. sid .. '"}'

local logMax = tonumber(ARGV[5])
if logMax > 0 then
  local kept = redis.call('ZCARD', KEYS[4])
  if kept == 0 and last > 0 then redis.call('HSET', KEYS[1], 'floor', string.format('%.0f', last)) end
  redis.call('ZADD', KEYS[4], id, entry)
  -- Trimmed in batches of a tenth: the log keeps between size and 1.1 × size messages.
  local over = kept + 1 - logMax
  if over > math.max(1, math.floor(logMax / 10)) then
    local trimmed = redis.call('ZRANGE', KEYS[4], over - 1, over - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
    redis.call('HSET', KEYS[1], 'floor', trimmed[2])
  end
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])

local receivers = redis.call('PUBLISH', ARGV[7], entry)
if tonumber(ARGV[2]) == 0 then return { sid, 0 } end
if receivers > 0 and redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf') > 0 then return { sid, 0 } end
redis.call('ZADD', KEYS[2], id, entry)
trim(KEYS[2], KEYS[1], tonumber(ARGV[2]), ARGV[3])
return { sid, 1 }
`
}

/** KEYS: meta, queue. ARGV: queue max, queue ttl, then id, entry pairs. */
export const requeue = {
  numberOfKeys: 2,
  lua: trimQueue + `
for i = 3, #ARGV, 2 do redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1]) end
trim(KEYS[2], KEYS[1], tonumber(ARGV[1]), ARGV[2])
`
}

/**
 * KEYS: auth, devices, queue, meta, log. ARGV: digest, device, now ms, presence ttl, max devices,
 * evict oldest (1|0), route, meta ttl, since ('' when the device has seen nothing), log cutoff (the
 * oldest id the resume log still keeps by age).
 * Returns { 'ok', dropped, queue entries, recovered ('1' | '0' | ''), missed entries, last id },
 * { 'revoked' } or { 'limit' }.
 */
export const attach = {
  numberOfKeys: 5,
  lua: resumeFrom + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return { 'revoked' } end
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
while redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) do
  if ARGV[6] ~= '1' then return { 'limit' } end
  local oldest, age = nil, nil
  for _, device in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local a = tonumber(string.match(device, '^%d+'))
    if age == nil or a < age then oldest, age = device, a end
  end
  redis.call('ZREM', KEYS[2], oldest)
  redis.call('PUBLISH', ARGV[7], '!evict|' .. oldest)
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[4], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[8])
local queued = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
local dropped = redis.call('HGET', KEYS[4], 'dropped') or '0'
redis.call('HDEL', KEYS[4], 'dropped')

local recovered, missed = '', {}
if ARGV[9] ~= '' then recovered, missed = resume(KEYS[4], KEYS[5], tonumber(ARGV[9]), false, tonumber(ARGV[10])) end
-- The device is in sync up to the last id; a user never sent to gets a starting point, so a later
-- catch-up can tell "nothing missed" from "we know nothing".
local seq = redis.call('HGET', KEYS[4], 'seq')
if not seq then
  seq = string.format('%.0f', now * 1000)
  redis.call('HSET', KEYS[4], 'seq', seq, 'floor', seq, 'born', string.format('%.0f', now * 1000 + 1))
end
return { 'ok', dropped, queued, recovered, missed, seq }
`
}

/**
 * KEYS: queue, meta, log. ARGV: since, log cutoff. After this instance's subscriber was cut off, its sockets take
 * what was queued meanwhile and what they missed. Returns { queue entries, recovered, missed entries }.
 */
export const catchUp = {
  numberOfKeys: 3,
  lua: resumeFrom + `
local queued = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local recovered, missed = resume(KEYS[2], KEYS[3], tonumber(ARGV[1]), true, tonumber(ARGV[2]))
return { queued, recovered, missed }
`
}

/** KEYS: devices, meta. ARGV: device, now ms, meta ttl. */
export const detach = {
  numberOfKeys: 2,
  lua: `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
`
}

/**
 * KEYS: devices, meta. ARGV: lapse time, presence ttl, now ms, meta ttl, devices…
 * The heartbeat of one user on one instance: keeps its devices present and records that the user was
 * seen now, so a crashed instance's users keep a last-seen time of at most one heartbeat before the crash.
 */
export const refresh = {
  numberOfKeys: 2,
  shared: 4,
  lua: `
for i = 5, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
`
}

/**
 * KEYS: devices, meta. ARGV: now ms. Devices whose instance stopped refreshing them (it crashed) are
 * removed here, lazily. Returns { devices, last seen or false }.
 */
export const presence = {
  numberOfKeys: 2,
  lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return { redis.call('ZCARD', KEYS[1]), redis.call('HGET', KEYS[2], 'seen') }
`
}

/** KEYS: auth, devices. ARGV: route. */
export const revoke = {
  numberOfKeys: 2,
  lua: `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], '!revoke')
`
}
