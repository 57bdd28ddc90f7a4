-- { members, entries } after a sweep.
sweep()
ev_track()
return { redis.call('HKEYS', members), redis.call('ZCARD', entries) }
