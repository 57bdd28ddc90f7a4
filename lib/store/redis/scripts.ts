// Lua run atomically inside Redis: each decision that must not race (deliver or queue, device limit and
// queue take) is one script, one round trip. Scripts touch only keys of one user (one cluster slot),
// except the server events they record beside a transition (lib/events/lua.ts), which a Cluster skips.
import { droppedLua, EVENTS_ON, eventsLua } from '../../events/lua.ts'

const trimQueue = `
${EVENTS_ON}
local function trim (queue, meta, max, ttl)
  local over = redis.call('ZCARD', queue) - max
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', queue, 0, over - 1)
    redis.call('HINCRBY', meta, 'dropped', over)${droppedLua('meta', 'over')}
  end
  redis.call('PEXPIRE', queue, ttl)
end
`

/**
 * The user's status for `user_status_<id>` watchers, kept in the meta hash: `on` while the user has a device
 * or is in the grace period after the last one left, `off` = when that grace period ends. The script that
 * changes the status publishes it, once, on the status route (`!online` / `!offline`).
 */
export const status = eventsLua + `
-- stale: when a sweep could find the user's devices no longer fresh (events' lapse index).
local function online (meta, route, stale)
  local base = ev_base(meta)
  local events = ev_on(base)
  if redis.call('HSETNX', meta, 'on', '1') == 1 then
    redis.call('PUBLISH', route, '!online')
    if events then ev_add(base, 'online', 'u:' .. ev_user(meta)) end
  else
    redis.call('HDEL', meta, 'off')
  end
  if events then redis.call('ZADD', base .. 'users', stale, ev_user(meta)) end
end
-- After devices left or lapsed: with none left, the user goes offline at due (an earlier grace end
-- stands). For the status a device counts while it lapses after fresh (refreshed within the last two
-- heartbeats), as a channel's presence entries do: an instance's crash shows within 3 heartbeats, the
-- sweep included. Returns when the grace period ends, or false.
local function settle (devices, meta, route, now, fresh, due)
  redis.call('ZREMRANGEBYSCORE', devices, '-inf', now)
  if redis.call('ZCOUNT', devices, '(' .. fresh, '+inf') > 0 or redis.call('HEXISTS', meta, 'on') == 0 then return false end
  local off = tonumber(redis.call('HGET', meta, 'off') or due)
  if off > now then
    redis.call('HSET', meta, 'off', string.format('%.0f', off))
    return string.format('%.0f', off)
  end
  redis.call('HDEL', meta, 'on', 'off')
  redis.call('PUBLISH', route, '!offline')
  local base = ev_base(meta)
  if ev_on(base) then ev_add(base, 'offline', 'u:' .. ev_user(meta), 's', redis.call('HGET', meta, 'seen') or '') end
  if EVENTS then redis.call('ZREM', base .. 'users', ev_user(meta)) end
  return false
end
`

/**
 * The resume log is a stream: one entry per message, under the stream id `<id / 1000>-<id % 1000>` (so
 * stream order is id order), with fields p (the id of the user's previous message) and m (the entry).
 * Whether a device that saw `since` can get everything after it is read off the oldest entry after
 * `since`: complete when that entry's predecessor is at or below `since`. No bookkeeping of what was
 * trimmed or expired: a gap shows in the chain.
 *
 * Reads the newest `size` entries after `since`: every message, or recovered '0' when some are gone (more
 * than `size`, older than the cutoff, or a broken chain). A device that stayed connected while Redis lost
 * its data (`connected`) missed nothing from before the loss: for it a chain that starts with the
 * user's first message since then (`born`) is complete.
 */
const resumeFrom = `
local function resume (meta, log, since, connected, cutoff, size)
  local seq = tonumber(redis.call('HGET', meta, 'seq') or '0')
  if seq == 0 then return connected and '1' or '0', {} end
  if since >= seq then return '1', {} end
  local from = string.format('(%.0f-%.0f', math.floor(since / 1000), since % 1000)
  local rows = redis.call('XREVRANGE', log, '+', from, 'COUNT', size + 1)
  if #rows == 0 or #rows > size then return '0', {} end
  local oldest = rows[#rows]
  local ms, n = string.match(oldest[1], '^(%d+)-(%d+)$')
  if tonumber(ms) * 1000 + tonumber(n) <= cutoff then return '0', {} end
  local before = tonumber(oldest[2][2])
  if before > since and not (connected and before + 1 == tonumber(redis.call('HGET', meta, 'born') or '0')) then
    return '0', {}
  end
  local missed = {}
  for i = #rows, 1, -1 do missed[#missed + 1] = rows[i][2][4] end
  return '1', missed
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
 * Every message also goes to the user's resume log (resumeFrom), trimmed by Redis in whole stream nodes
 * (MAXLEN ~): cheap, and a device still gets at most the newest `size`. The first message of a user's
 * meta starts a new chain (its predecessor is itself minus one, and it is `born`): a log left from
 * before the meta expired is dropped, as nothing could tell its gap.
 */
const deliver = `
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local id = math.max(last + 1, now * 1000)
local sid = string.format('%.0f', id)
if last == 0 then
  last = id - 1
  redis.call('HSET', KEYS[1], 'seq', sid, 'born', sid)
  redis.call('DEL', KEYS[4])
else
  redis.call('HSET', KEYS[1], 'seq', sid)
end
local entry = sid .. '|' .. ARGV[8] .. sid .. '"}'

if ARGV[5] ~= '0' then
  local xid = string.format('%.0f-%.0f', math.floor(id / 1000), id % 1000)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], xid, 'p', string.format('%.0f', last), 'm', entry)
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

export const send = {
  numberOfKeys: 4,
  shared: 6,
  lua: trimQueue + deliver
}

/**
 * send, once per idempotency key: KEYS and ARGV as send's, plus KEYS[5] the key's record and ARGV[9]
 * how long it is kept (ms). A repeat while the record lives sends nothing and returns the first reply.
 */
export const sendOnce = {
  numberOfKeys: 5,
  shared: 6,
  lua: trimQueue + `
local done = redis.call('GET', KEYS[5])
if done then
  local bar = string.find(done, '|', 1, true)
  return { string.sub(done, 1, bar - 1), tonumber(string.sub(done, bar + 1)) }
end
local function send ()
${deliver}
end
local reply = send()
redis.call('SET', KEYS[5], reply[1] .. '|' .. reply[2], 'PX', ARGV[9])
return reply
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
 * KEYS: auth, devices, queue, meta, log, revoked. ARGV: proof (the hash's digest, or `@<issued at ms>`
 * for a token or the upgrade hook, refused if revoked after it), device, now ms, presence ttl, max devices,
 * evict oldest (1|0), route, meta ttl, since ('' when the device has seen nothing), log cutoff (ids at or
 * below it are older than the log keeps), log size, status route.
 * Returns { 'ok', dropped, queue entries, recovered ('1' | '0' | ''), missed entries, last id },
 * { 'revoked' } or { 'limit' }; on 'ok' publishes `!synced|<device>` on the route.
 */
export const attach = {
  numberOfKeys: 6,
  lua: resumeFrom + status + `
if string.byte(ARGV[1]) == 64 then
  local revoked = redis.call('GET', KEYS[6])
  if revoked and tonumber(revoked) > tonumber(string.sub(ARGV[1], 2)) then return { 'revoked' } end
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then return { 'revoked' } end
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
online(KEYS[4], ARGV[12], now + tonumber(ARGV[4]) * 2 / 3)
local queued = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
local dropped = redis.call('HGET', KEYS[4], 'dropped') or '0'
redis.call('HDEL', KEYS[4], 'dropped')

local recovered, missed = '', {}
if ARGV[9] ~= '' then recovered, missed = resume(KEYS[4], KEYS[5], tonumber(ARGV[9]), false, tonumber(ARGV[10]), tonumber(ARGV[11])) end
-- The device is in sync up to the last id; a user never sent to gets a starting point, so a later
-- catch-up can tell "nothing missed" from "we know nothing".
local seq = redis.call('HGET', KEYS[4], 'seq')
if not seq then
  seq = string.format('%.0f', now * 1000)
  redis.call('HSET', KEYS[4], 'seq', seq, 'born', string.format('%.0f', now * 1000 + 1))
end
-- The marker: behind every message sent before this attach on the route, so once the instance reads it,
-- it has read them all.
redis.call('PUBLISH', ARGV[7], '!synced|' .. ARGV[2])
return { 'ok', dropped, queued, recovered, missed, seq }
`
}

/**
 * KEYS: queue, meta, log. ARGV: since, log cutoff, log size. After this instance's subscriber was cut off, its sockets take
 * what was queued meanwhile and what they missed. Returns { queue entries, recovered, missed entries }.
 */
export const catchUp = {
  numberOfKeys: 3,
  lua: resumeFrom + `
local queued = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local recovered, missed = resume(KEYS[2], KEYS[3], tonumber(ARGV[1]), true, tonumber(ARGV[2]), tonumber(ARGV[3]))
return { queued, recovered, missed }
`
}

/**
 * KEYS: devices, meta. ARGV: device, now ms, meta ttl, status route, grace (ms), fresh (settle). Returns
 * when the grace period that starts ends (a status sweep then, on any instance, sends offline), or false.
 */
export const detach = {
  numberOfKeys: 2,
  lua: status + `
local now = tonumber(ARGV[2])
local left = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return settle(KEYS[1], KEYS[2], ARGV[4], now, ARGV[6], left == 1 and now + tonumber(ARGV[5]) or now)
`
}

/**
 * KEYS: devices, meta. ARGV: lapse time, presence ttl, now ms, meta ttl, status route, devices…
 * The heartbeat of one user on one instance: keeps its devices present (and the user online) and records
 * that the user was seen now, so a crashed instance's users keep a last-seen time of at most one heartbeat
 * before the crash. ZADD, not ZADD XX: if Redis lost its data, the heartbeat puts the devices back.
 */
export const refresh = {
  numberOfKeys: 2,
  shared: 4,
  lua: status + `
for i = 6, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[2], 'seen', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
online(KEYS[2], ARGV[5], tonumber(ARGV[1]) - tonumber(ARGV[2]) / 3)
`
}

/**
 * KEYS: devices, meta. ARGV: now ms, status route, fresh (settle). Devices whose instance stopped
 * refreshing them (it crashed) are removed here, lazily, and a user whose grace period is over goes
 * offline: instances sweep the users they have watchers of every heartbeat, and when a grace period they
 * started ends.
 * Returns { devices, last seen or false, online (1|0), end of the grace period or false }.
 */
export const presence = {
  numberOfKeys: 2,
  lua: status + `
local now = tonumber(ARGV[1])
local due = settle(KEYS[1], KEYS[2], ARGV[2], now, ARGV[3], now)
return { redis.call('ZCARD', KEYS[1]), redis.call('HGET', KEYS[2], 'seen'), redis.call('HEXISTS', KEYS[2], 'on'), due }
`
}

/** KEYS: auth, devices, revoked. ARGV: route, now ms, revocation ttl (0: not recorded). */
export const revoke = {
  numberOfKeys: 3,
  lua: `
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3]) end
redis.call('PUBLISH', ARGV[1], '!revoke')
`
}
