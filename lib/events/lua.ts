// The `events` lib of the scripts that decide presence transitions (lib/store/redis/script.ts): each appends
// its event to a stream in the same atomic step as the transition, so an event is recorded exactly once
// and never without its transition. See docs/events.md.
import { slotOf } from '../store/redis/slots.ts'

/** Streams per Redis: a user's or channel's events all go to one, so they keep their order. */
export const PARTITIONS = 16
/** Entries kept per stream (MAXLEN ~): events nobody reads in time are trimmed, oldest first. */
export const STREAM_MAX = 10_000
/**
 * Partitions are tried from the subject's hash on in steps of this (coprime with PARTITIONS, so each is
 * tried once): a step of 1 would walk through a neighbouring master's run of partitions and crowd the
 * subjects it skips onto the first partition of the next run (docs/events.md).
 */
const PROBE_STEP = 5

/**
 * The hash tag of each partition's keys: the first `e<n>.<k>` whose Cluster slot lies in the n-th
 * sixteenth of the slots, so every master serving a sixteenth of them in one block serves a partition.
 */
export const PARTITION_TAGS: readonly string[] = Array.from({ length: PARTITIONS }, (_, n) => {
  for (let k = 0; ; k++) {
    const tag = `e${n}.${k}`
    if (Math.floor(slotOf(tag) * PARTITIONS / 16384) === n) return tag
  }
})

/**
 * A partition's keys share its tag: `on` (set while an instance listens or sends webhooks), `s` (the
 * stream), `users` / `channels` (who may go offline or empty by a lapse, scored by when to look). A
 * subject (the hash tag of the key a script was given) belongs to the first partition tried (PROBE_STEP)
 * that this Redis serves: on a single Redis the first one, on a Cluster the first on the same master
 * (the scripts run with allow-cross-slot-keys; a key of another master is refused, which pcall tells).
 */
export const eventsLua = `
local EV_TAGS = { '${PARTITION_TAGS.join("', '")}' }
local function ev_base (key)
  local prefix, tag = string.match(key, '^(.-){(.-)}')
  local h = 0
  for i = 1, #tag do h = (h * 31 + string.byte(tag, i)) % 1000003 end
  for i = 0, ${PARTITIONS - 1} do
    local base = prefix .. '{' .. EV_TAGS[(h + i * ${PROBE_STEP}) % ${PARTITIONS} + 1] .. '}:'
    if type(redis.pcall('EXISTS', base .. 'on')) == 'number' then return base end
  end
  return nil
end
local function ev_on (base)
  return base ~= nil and redis.call('EXISTS', base .. 'on') == 1
end
local function ev_add (base, kind, subject, ...)
  redis.call('XADD', base .. 's', 'MAXLEN', '~', ${STREAM_MAX}, '*', 't', kind, 'k', subject, ...)
end
local function ev_user (key)
  return string.match(key, '{u:(.*)}')
end
`
