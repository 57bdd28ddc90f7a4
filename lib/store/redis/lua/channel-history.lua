-- { 1, entries } or { 0 } when since is no longer (or never was) in the stream: never a partial list.
if since == '' then return { 1, redis.call('XRANGE', stream, '-', '+') } end
-- An id Redis cannot parse (too big) is one we never gave out: not recovered, rather than an error.
local hit = redis.pcall('XRANGE', stream, since, since)
if hit.err ~= nil or #hit == 0 then return { 0 } end
return { 1, redis.call('XRANGE', stream, '(' .. since, '+') }
