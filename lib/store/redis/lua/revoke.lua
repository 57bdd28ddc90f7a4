redis.call('DEL', auth, devices)
if tonumber(revocation_ttl) > 0 then redis.call('SET', revoked, now, 'PX', revocation_ttl) end
redis.call(PUBLISH, route, '!revoke')
