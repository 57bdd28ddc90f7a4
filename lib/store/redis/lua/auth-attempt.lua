-- The window starts with the key.
local failures = tonumber(redis.call('HGET', attempts, 'f') or '0')
local in_flight = tonumber(redis.call('HGET', attempts, 'i') or '0')
local admitted = 0
if failures + in_flight < tonumber(max) then
  redis.call('HINCRBY', attempts, 'i', 1)
  if redis.call('PTTL', attempts) == -1 then redis.call('PEXPIRE', attempts, window) end
  admitted = 1
end
return { admitted, failures, redis.call('PTTL', attempts) }
