// Names of users, channels and events follow the server's rule (lib/protocol/names.ts), checked early so
// mistakes surface at the call.
import { NAME } from '../protocol/names.ts'

export interface Topic {
  channel: string
  /** Only this event, or every event of the channel when null. */
  event: string | null
}

/** `msg`, `msg.event1`, `news`, `news.update`. */
export function parseTopic (topic: string): Topic {
  if (typeof topic !== 'string') throw new TypeError('topic must be a string such as "msg", "msg.event1" or "news.update"')
  const dot = topic.indexOf('.')
  const channel = dot === -1 ? topic : topic.slice(0, dot)
  const event = dot === -1 ? null : topic.slice(dot + 1)
  if (!NAME.test(channel)) throw new TypeError(`bad topic "${topic}": the channel must match [A-Za-z0-9_-]{1,64}`)
  if (event !== null && !NAME.test(event)) throw new TypeError(`bad topic "${topic}": the event after the dot must match [A-Za-z0-9_-]{1,64}`)
  return { channel, event }
}

export function checkName (what: string, value: string): void {
  if (typeof value !== 'string' || !NAME.test(value)) throw new TypeError(`${what} must match [A-Za-z0-9_-]{1,64}, got ${JSON.stringify(value)}`)
}

/**
 * A private message id as a number, or undefined when it is not a plain decimal below 2^53.
 * Ids of one user increase in send order, so a message whose id is not above the last one seen was seen.
 */
export function privateId (id: unknown): number | undefined {
  if (typeof id !== 'string' || !/^[0-9]{1,16}$/.test(id)) return undefined
  const n = Number(id)
  return Number.isSafeInteger(n) ? n : undefined
}
