import { errors } from './errors.ts'
import { asUserId, isChannelName, NAME } from './protocol/names.ts'

/** How an app names a user: a string, or a number that is kept as its decimal string. */
export type UserId = string | number

export function userId (value: unknown): string {
  const id = asUserId(value)
  if (id === null) throw new errors.USER_ID(describe(value))
  return id
}

/** Most users one sendToUsers call takes. */
export const MAX_USERS = 10_000

/** A list of user ids, normalized, each once (the first occurrence keeps its place). */
export function userIds (value: unknown): string[] {
  if (!Array.isArray(value)) throw new errors.USER_IDS(`expected an array, got ${describe(value)}`)
  if (value.length > MAX_USERS) throw new errors.USER_IDS(`${value.length} ids, over ${MAX_USERS}: split the list`)
  return [...new Set(value.map(userId))]
}

/** An integer option ≥ min, or `fallback` when not given (required when there is none). */
export function intOption (name: string, value: unknown, fallback: number | undefined, min: number): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new errors.OPTIONS(`${name} must be an integer ≥ ${min}, got ${String(value)}`)
  }
  return value
}

export function eventName (value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) throw new errors.EVENT(describe(value))
  return value
}

export function channelName (value: unknown): string {
  if (!isChannelName(value)) throw new errors.CHANNEL(describe(value))
  return value
}

export function ttl (value: unknown): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new errors.TTL(describe(value))
  return value
}

/** Serializes `data` once; the JSON text is forwarded as-is from here to every socket. */
export function json (data: unknown): string {
  let text: string | undefined
  try {
    text = JSON.stringify(data)
  } catch (err) {
    throw new errors.DATA((err as Error).message)
  }
  if (text === undefined) throw new errors.DATA(`${typeof data} is not JSON`)
  return text
}

export function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value)
  if (typeof value === 'bigint') return `${value}n`
  return typeof value === 'object' && value !== null ? Object.prototype.toString.call(value) : String(value)
}
