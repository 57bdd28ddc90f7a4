-- proof: the hash's digest, or `@<issued at ms>` for a token or the upgrade hook (refused if the user was
-- revoked after it).
if string.byte(proof) == 64 then
  local revoked_at = redis.call('GET', revoked)
  if revoked_at and tonumber(revoked_at) > tonumber(string.sub(proof, 2)) then return { 'revoked' } end
elseif redis.call('GET', auth) ~= proof then return { 'revoked' } end
local at = tonumber(now)
redis.call('ZREMRANGEBYSCORE', devices, '-inf', at)
while redis.call('ZCARD', devices) >= tonumber(max_devices) do
  if evict_oldest ~= '1' then return { 'limit' } end
  local oldest, age = nil, nil
  for _, device in ipairs(redis.call('ZRANGE', devices, 0, -1)) do
    local a = tonumber(string.match(device, '^%d+'))
    if age == nil or a < age then oldest, age = device, a end
  end
  redis.call('ZREM', devices, oldest)
  redis.call(PUBLISH, route, '!evict|' .. oldest)
end
redis.call('ZADD', devices, at + tonumber(presence_ttl), device)
redis.call('PEXPIRE', devices, presence_ttl)
redis.call('HSET', meta, 'seen', now)
redis.call('PEXPIRE', meta, meta_ttl)
online(meta, status_route, at + tonumber(presence_ttl) * 2 / 3)
local queued = redis.call('ZRANGE', queue, 0, -1)
redis.call('DEL', queue)
local dropped = redis.call('HGET', meta, 'dropped') or '0'
redis.call('HDEL', meta, 'dropped')

local recovered, missed = '', {}
if since ~= '' then
  recovered, missed = resume(meta, log, tonumber(since), false, tonumber(log_cutoff), tonumber(log_size), log_span, tail)
end
-- The device is in sync up to the last id (a user never sent to gets a log, hence a starting point, so a
-- later resume can tell "nothing missed" from "we know nothing").
local seq = open(meta, meta_ttl, log, log_ttl, log_span)
-- The marker: behind every message sent before this attach on the route, so once the instance reads it,
-- it has read them all.
redis.call(PUBLISH, route, '!synced|' .. device)
return { 'ok', dropped, queued, recovered, missed, seq }
