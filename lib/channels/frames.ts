import type { Ref } from '../protocol/frames.ts'
import { USER_STATUS } from '../protocol/names.ts'
import type { PresenceFrames } from '../store/channels.ts'

/** A client-published `message` frame without its id: like messageHead(), with the sender's userId. */
export function clientMessageHead (channel: string, event: string, dataJson: string, userId: string | null): string {
  return `{"type":"message","channel":"${channel}","event":"${event}","data":${dataJson},"userId":${userId === null ? 'null' : `"${userId}"`},"id":"`
}

/** A `<type>` presence frame is `head + userId + tail`; user ids need no escaping. */
export function presenceFrames (channel: string, join: string, leave: string): PresenceFrames {
  return { joinHead: `{"type":"${join}","channel":"${channel}","userId":"`, leaveHead: `{"type":"${leave}","channel":"${channel}","userId":"`, tail: '"}' }
}

/** The `online` / `offline` frame of `user_status_<id>`. */
export function statusFrame (userId: string, online: boolean): Buffer {
  return Buffer.from(`{"type":"${online ? 'online' : 'offline'}","channel":"${USER_STATUS}${userId}","userId":"${userId}"}`)
}

/**
 * Room a message on a channel with history leaves in maxPayload, so that it fits in a history reply: the
 * reply's fields (without `ref`), and ids of any length.
 */
export const HISTORY_ENVELOPE = 200

const MORE = ',"more":true'

/**
 * Builds a reply whose `<field>` list is JSON texts already serialized: the first ones that fit in
 * `maxPayload`, with `"more":true` when some did not (the client asks again from the last one). Null when
 * not even one fits (a `ref` too long).
 */
function paged (head: string, field: string, items: string[], ref: Ref | undefined, maxPayload: number): string | null {
  const open = `,"${field}":[`
  const tail = ref === undefined ? ']}' : `],"ref":${JSON.stringify(ref)}}`
  let size = Buffer.byteLength(head) + MORE.length + open.length + Buffer.byteLength(tail)
  let n = 0
  for (; n < items.length; n++) {
    size += Buffer.byteLength(items[n] as string) + (n > 0 ? 1 : 0)
    if (size > maxPayload) break
  }
  if (n === 0 && items.length > 0) return null
  const page = n === items.length ? items : items.slice(0, n)
  return `${head}${n < items.length ? MORE : ''}${open}${page.join(',')}${tail}`
}

/** A `history` reply of message frames already serialized, without parsing them again; paged (see paged). */
export function historyReply (channel: string, recovered: boolean, frames: string[], ref: Ref | undefined, maxPayload: number): string | null {
  return paged(`{"type":"history","channel":"${channel}","recovered":${String(recovered)}`, 'messages', frames, ref, maxPayload)
}

/** A `members` reply: user ids in order, after `after`; paged (see paged). */
export function membersReply (channel: string, members: string[], after: string | null, ref: Ref | undefined, maxPayload: number): string | null {
  const sorted = members.filter((m) => after === null || m > after).sort()
  // User ids need no escaping.
  return paged(`{"type":"members","channel":"${channel}"`, 'members', sorted.map((m) => `"${m}"`), ref, maxPayload)
}
