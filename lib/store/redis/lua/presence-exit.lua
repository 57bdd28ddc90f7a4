-- Returns the end of the next grace period, or false.
if redis.call('ZREM', entries, user .. '|' .. entry) == 1 then
  if EV_ON and redis.call('ZCARD', entries) == 0 then ev('vacated') end
  if user ~= '' then gone(user, now + tonumber(grace)) end
end
local upcoming = sweep()
keep()
return upcoming
