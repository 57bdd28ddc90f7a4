// Lua shared by the scripts that decide presence transitions (lib/store/redis/scripts.ts and
// channel-scripts.ts): each appends its event to a stream in the same atomic step as the transition, so an
// event is recorded exactly once and never without its transition. See docs/events.md.

/** Streams per Redis: a user's or channel's events all go to one, so they keep their order. */
export const PARTITIONS = 16
/** Entries kept per stream (MAXLEN ~): events nobody reads in time are trimmed, oldest first. */
export const STREAM_MAX = 10_000
/** Where a script says whether it records events; the Cluster variant of the scripts says false. */
export const EVENTS_ON = 'local EVENTS = true'
export const EVENTS_OFF = 'local EVENTS = false'

/**
 * Every events key shares the hash tag `{e}`: `on` (set while an instance listens or sends webhooks),
 * `s<n>` (the streams), `users` / `channels` (who may go offline or empty by a lapse, scored by when to
 * look). On a Redis Cluster these would be in another slot than a user's keys, so there EVENTS is false
 * (lib/store/redis/client.ts) and none of this runs.
 */
export const eventsLua = `
${EVENTS_ON}
local function ev_base (key)
  return string.match(key, '^(.-){') .. '{e}:'
end
local function ev_on (base)
  return EVENTS and redis.call('EXISTS', base .. 'on') == 1
end
local function ev_add (base, kind, subject, ...)
  local h = 0
  for i = 1, #subject do h = (h * 31 + string.byte(subject, i)) % 1000003 end
  redis.call('XADD', base .. 's' .. (h % ${PARTITIONS}), 'MAXLEN', '~', ${STREAM_MAX}, '*', 't', kind, 'k', subject, ...)
end
local function ev_user (key)
  return string.match(key, '{u:(.*)}')
end
`

/**
 * The `dropped` event as inline Lua, for the send script: no functions defined on its hot path, only
 * this block on the rare overflow. `meta` and `over` name the script's locals.
 */
export function droppedLua (meta: string, over: string): string {
  return `
    local base = string.match(${meta}, '^(.-){') .. '{e}:'
    if EVENTS and redis.call('EXISTS', base .. 'on') == 1 then
      local subject = 'u:' .. string.match(${meta}, '{u:(.*)}')
      local h = 0
      for i = 1, #subject do h = (h * 31 + string.byte(subject, i)) % 1000003 end
      redis.call('XADD', base .. 's' .. (h % ${PARTITIONS}), 'MAXLEN', '~', ${STREAM_MAX}, '*', 't', 'dropped', 'k', subject, 'n', ${over})
    end`
}
