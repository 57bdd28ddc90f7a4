-- Caps a user's queue at max entries, dropping the oldest and counting them (a `dropped` server event
-- too), and renews its lifetime.
local function trim (queue, meta, max, ttl)
  local over = redis.call('ZCARD', queue) - max
  if over > 0 then
    redis.call('ZREMRANGEBYRANK', queue, 0, over - 1)
    redis.call('HINCRBY', meta, 'dropped', over)
    local base = ev_base(meta)
    if ev_on(base) then ev_add(base, 'dropped', 'u:' .. ev_user(meta), 'n', over) end
  end
  redis.call('PEXPIRE', queue, ttl)
end
