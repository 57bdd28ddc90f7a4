-- A sweep moves a member's next look to the lapse index of the partition on its own master; a member
-- swept from `index` and still due there moved to another master (a reshard): forget it here.
for _, member in ipairs(members) do
  local due = redis.call('ZSCORE', index, member)
  if due and tonumber(due) <= tonumber(now) then redis.call('ZREM', index, member) end
end
return false
