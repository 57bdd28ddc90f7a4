-- Keeps the message when the channel has history (size ~= '0': the stream id is the message id, else
-- `id` is) and publishes `sender .. head .. id .. tail`, in one step. Returns the id.
local function publish (stream, route, head, tail, size, ttl, sender, id)
  if size ~= '0' then
    id = redis.call('XADD', stream, 'MAXLEN', '~', size, '*', 'h', head)
    redis.call('PEXPIRE', stream, ttl)
  end
  redis.call(PUBLISH, route, sender .. head .. id .. tail)
  return id
end
