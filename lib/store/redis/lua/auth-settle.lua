-- Only a key that still exists (its window not over) is changed.
if redis.call('EXISTS', attempts) == 0 then return { 0, 0 } end
if tonumber(redis.call('HGET', attempts, 'i') or '0') > 0 then redis.call('HINCRBY', attempts, 'i', -1) end
if failed == '1' then redis.call('HINCRBY', attempts, 'f', 1) end
return { tonumber(redis.call('HGET', attempts, 'f') or '0'), redis.call('PTTL', attempts) }
