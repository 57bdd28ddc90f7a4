-- Drops the entries of `stream` every group is done with: before the oldest unacknowledged entry of each
-- group, or up to what it last read; MAXLEN bounds the rest (a group nobody reads any more). Forgets
-- consumers idle for `idle` ms with nothing pending (an instance gone). Returns the groups that MAXLEN
-- made miss entries they had not read yet.
local function older (a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local info = {}
local raw = redis.call('XINFO', 'STREAM', stream)
for i = 1, #raw, 2 do info[raw[i]] = raw[i + 1] end
local floor, missed = nil, {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local g = {}
  for i = 1, #group, 2 do g[group[i]] = group[i + 1] end
  local mark = g['last-delivered-id']
  if older(mark, info['max-deleted-entry-id']) then missed[#missed + 1] = g['name'] end
  if tonumber(g['pending']) > 0 then mark = redis.call('XPENDING', stream, g['name'])[2] end
  if floor == nil or older(mark, floor) then floor = mark end
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', stream, g['name'])) do
    local c = {}
    for i = 1, #consumer, 2 do c[consumer[i]] = consumer[i + 1] end
    if tonumber(c['pending']) == 0 and tonumber(c['idle']) > tonumber(idle) then
      redis.call('XGROUP', 'DELCONSUMER', stream, g['name'], c['name'])
    end
  end
end
if floor ~= nil then redis.call('XTRIM', stream, 'MINID', floor) end
return missed
