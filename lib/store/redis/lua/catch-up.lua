local queued = redis.call('ZRANGE', queue, 0, -1)
redis.call('DEL', queue)
local recovered, missed = resume(meta, log, tonumber(since), true, tonumber(log_cutoff), tonumber(log_size), log_span, tail)
return { queued, recovered, missed }
