/** The server events, in the order docs/events.md lists them. */
export const EVENT_TYPES = ['online', 'offline', 'join', 'leave', 'occupied', 'vacated', 'dropped'] as const

export type ServerEventType = typeof EVENT_TYPES[number]

interface EventBase<T extends ServerEventType> {
  /** Unique, and the same when the event is delivered again (a retry, another instance): dedupe on it. */
  id: string
  type: T
  /** When the store decided it, as an ISO time. */
  at: string
}

/** The user's first device anywhere in the cluster, after being offline. */
export interface OnlineEvent extends EventBase<'online'> { userId: string }
/** The user's last device left `presenceGrace` ago, or their devices lapsed (their instance died). */
export interface OfflineEvent extends EventBase<'offline'> {
  userId: string
  /** When a device of the user was last seen, as an ISO time. */
  lastSeen: string | null
}
/** A user's first subscription to a `track_` channel / their last one gone (after `presenceGrace`). */
export interface JoinEvent extends EventBase<'join'> { channel: string, userId: string }
export interface LeaveEvent extends EventBase<'leave'> { channel: string, userId: string }
/** A channel's first subscriber anywhere in the cluster / its last one gone. */
export interface OccupiedEvent extends EventBase<'occupied'> { channel: string }
export interface VacatedEvent extends EventBase<'vacated'> { channel: string }
/** The user's offline queue overflowed: `count` of their oldest queued messages were dropped. */
export interface DroppedEvent extends EventBase<'dropped'> { userId: string, count: number }

export type ServerEvent = OnlineEvent | OfflineEvent | JoinEvent | LeaveEvent | OccupiedEvent | VacatedEvent | DroppedEvent

export interface ServerEventMap {
  online: OnlineEvent
  offline: OfflineEvent
  join: JoinEvent
  leave: LeaveEvent
  occupied: OccupiedEvent
  vacated: VacatedEvent
  dropped: DroppedEvent
}

export type ServerEventListener<T extends ServerEventType = ServerEventType> = (event: ServerEventMap[T]) => unknown

export interface WebhookOptions {
  /** Where events are POSTed, as `{ "events": [...] }` (http or https). */
  url: string
  /** Signs each request (X-Comet-Signature); receivers check it with `verifyWebhook`. At least 16 characters. */
  secret: string
  /** Event types this webhook gets. @default every type */
  types?: ServerEventType[]
  /** How long a batch is retried (non-2xx, network error, 5 s timeout) before it is given up, in ms. @default 86400000 */
  retryFor?: number
}

/**
 * An event as a store records it: the subject it is ordered by (`u:<userId>` or `c:<channel>`), when (ms),
 * and its fields. The public event is built from it and its id.
 */
export interface StoreEvent {
  type: ServerEventType
  key: string
  at: number
  userId?: string
  channel?: string
  count?: number
  /** offline: last seen (ms), or null. */
  lastSeen?: number | null
}

/** Where a memory store hands its events (lib/events/memory.ts). */
export type EventSink = (event: StoreEvent) => void

export function toEvent (raw: StoreEvent, id: string): ServerEvent {
  const base = { id, type: raw.type, at: new Date(raw.at).toISOString() }
  switch (raw.type) {
    case 'online': return { ...base, type: raw.type, userId: raw.userId! }
    case 'offline': return { ...base, type: raw.type, userId: raw.userId!, lastSeen: raw.lastSeen == null ? null : new Date(raw.lastSeen).toISOString() }
    case 'join':
    case 'leave': return { ...base, type: raw.type, channel: raw.channel!, userId: raw.userId! }
    case 'occupied':
    case 'vacated': return { ...base, type: raw.type, channel: raw.channel! }
    case 'dropped': return { ...base, type: raw.type, userId: raw.userId!, count: raw.count! }
  }
}
