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
 * KEYS: meta, queue. ARGV: route, now ms, frame head, queue max, queue ttl, meta ttl.
 * Returns { id, receivers, queued(1|0) }. PUBLISH's receiver count is the decision: 0 means no instance
 * listens for the user (a crashed instance's subscriber connection is gone too), so the message is queued.
 */
export const send = {
  numberOfKeys: 2,
  lua: trimQueue + `
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local id = string.format('%.0f', math.max(last + 1, tonumber(ARGV[2]) * 1000))
redis.call('HSET', KEYS[1], 'seq', id)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local entry = id .. '|' .. ARGV[3] .. id .. '"}'
if redis.call('PUBLISH', ARGV[1], entry) > 0 then return { id, 0 } end
if tonumber(ARGV[4]) == 0 then return { id, 0 } end
redis.call('ZADD', KEYS[2], id, entry)
trim(KEYS[2], KEYS[1], tonumber(ARGV[4]), ARGV[5])
return { id, 1 }
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
 * KEYS: auth, devices, queue, meta. ARGV: digest, device, now ms, presence ttl, max devices,
 * evict oldest (1|0), route.
 * Returns { 'ok', dropped, queue entries } or { 'revoked' } or { 'limit' }.
 */
export const attach = {
  numberOfKeys: 4,
  lua: `
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
local queued = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[3])
local dropped = redis.call('HGET', KEYS[4], 'dropped') or '0'
redis.call('HDEL', KEYS[4], 'dropped')
return { 'ok', dropped, queued }
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
 * KEYS: devices, meta. ARGV: now ms, presence ttl.
 * Devices whose instance stopped refreshing them (it crashed) are removed here, lazily; the user's
 * last seen time becomes that instance's last refresh. Returns { devices, seen or false }.
 */
export const presence = {
  numberOfKeys: 2,
  lua: `
local now = tonumber(ARGV[1])
local lapsed = redis.call('ZREVRANGEBYSCORE', KEYS[1], now, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #lapsed > 0 then
  local seen = tonumber(lapsed[2]) - tonumber(ARGV[2])
  if seen > tonumber(redis.call('HGET', KEYS[2], 'seen') or '0') then
    redis.call('HSET', KEYS[2], 'seen', string.format('%.0f', seen))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
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
