-- A repeat while the key's record lives publishes nothing and returns the first id.
local done = redis.call('GET', once)
if done then return done end
local published = publish(stream, route, head, tail, size, ttl, sender, id)
redis.call('SET', once, published, 'PX', once_ttl)
return published
