-- entries: id, entry pairs.
for i = 1, #entries, 2 do redis.call('ZADD', queue, entries[i], entries[i + 1]) end
trim(queue, meta, tonumber(queue_max), queue_ttl)
