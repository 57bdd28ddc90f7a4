-- Queues an event for the instances with a listener for its type, if `on` says one listens. Returns 1|0.
if redis.call('EXISTS', on) == 0 then return 0 end
redis.call('XADD', stream, 'MAXLEN', '~', max, '*', 'k', subject, 'e', event)
return 1
