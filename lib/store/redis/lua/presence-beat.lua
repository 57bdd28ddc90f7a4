-- present: user, entry pairs. ZADD, not XX: if Redis lost the set, the heartbeat rebuilds it.
local lapse = now + tonumber(ttl)
for i = 1, #present, 2 do add(present[i], present[i + 1], lapse) end
local upcoming = sweep()
keep()
return upcoming
