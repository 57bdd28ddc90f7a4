-- Renews a lease for `ttl` ms, or releases it (ttl '0'), only while `me` holds it. Returns 1|0.
if redis.call('GET', lease) ~= me then return 0 end
if ttl == '0' then return redis.call('DEL', lease) end
return redis.call('PEXPIRE', lease, ttl)
