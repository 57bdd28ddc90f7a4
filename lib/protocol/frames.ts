import { asUserId, isChannelName, NAME } from './names.ts'

export type Ref = string | number

export type ClientFrame =
  | { type: 'auth', userId: string | null, hash: string | null, token: string | null, since: number | null, sinceUser: string | null, ref?: Ref }
  | { type: 'refresh', token: string, ref?: Ref }
  | { type: 'subscribe' | 'unsubscribe', channel: string, ref?: Ref }
  | { type: 'ping', ref?: Ref }
  | ChannelFrame

/** A client frame we answer with an `error` frame; the connection stays usable. */
export class FrameError extends Error {
  readonly code: string
  readonly ref: Ref | undefined
  constructor (code: string, message: string, ref?: Ref) {
    super(message)
    this.code = code
    this.ref = ref
  }
}

/** Parses and checks one client text frame. Throws FrameError, never anything else. */
export function parseFrame (text: string): ClientFrame {
  let frame: unknown
  try {
    frame = JSON.parse(text)
  } catch {
    throw new FrameError('bad_json', 'frame is not valid JSON')
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new FrameError('bad_json', 'frame must be a JSON object')
  }
  const f = frame as Record<string, unknown>
  const ref = f.ref
  if (ref !== undefined && !((typeof ref === 'string' && ref.length <= 64) || (typeof ref === 'number' && Number.isFinite(ref)))) {
    throw new FrameError('bad_frame', 'ref must be a number or a string of at most 64 characters')
  }
  const r = ref as Ref | undefined
  switch (f.type) {
    case 'auth': {
      const { userId, hash, token } = f
      const since = f.since
      if (since !== undefined && !(typeof since === 'string' && /^\d{1,16}$/.test(since))) {
        throw new FrameError('bad_frame', 'since must be the id of a message, a string of digits', r)
      }
      const sinceUser = f.sinceUser
      if (sinceUser !== undefined && !(typeof sinceUser === 'string' && NAME.test(sinceUser))) {
        throw new FrameError('bad_frame', 'sinceUser must match [A-Za-z0-9_-]{1,64}', r)
      }
      const auth = {
        type: 'auth' as const,
        userId: null,
        hash: null,
        token: null,
        since: since === undefined ? null : Number(since),
        sinceUser: sinceUser ?? null,
        ref: r
      }
      if (token !== undefined) {
        if (userId !== undefined || hash !== undefined) throw new FrameError('bad_frame', 'send either a token or a userId and hash, not both', r)
        return { ...auth, token: tokenOf(token, r) }
      }
      if (userId === undefined && hash === undefined) return auth
      const id = asUserId(userId)
      if (id === null) throw new FrameError('bad_frame', 'userId must match [A-Za-z0-9_-]{1,64}', r)
      if (typeof hash !== 'string' || hash.length === 0 || hash.length > 1024) throw new FrameError('bad_frame', 'hash must be a non-empty string', r)
      return { ...auth, userId: id, hash }
    }
    case 'refresh':
      return { type: 'refresh', token: tokenOf(f.token, r), ref: r }
    case 'subscribe':
    case 'unsubscribe':
      if (!isChannelName(f.channel)) throw new FrameError('bad_channel', 'channel must match [A-Za-z0-9_-]{1,64} and not be "msg"', r)
      return { type: f.type, channel: f.channel, ref: r }
    case 'ping':
      return { type: 'ping', ref: r }
    case 'publish':
    case 'members':
    case 'history':
      return parseChannelFrame(f, r)
    default:
      throw new FrameError('unknown_type', 'type must be one of auth, refresh, subscribe, unsubscribe, ping, publish, members, history', r)
  }
}

export type ChannelFrame =
  | { type: 'publish', channel: string, event: string, data: unknown, ref?: Ref }
  | { type: 'members', channel: string, after: string | null, ref?: Ref }
  | { type: 'history', channel: string, since: string | null, ref?: Ref }

/** Parses the channel frames (publish, members, history) once parseFrame has checked type and ref. */
function parseChannelFrame (f: Record<string, unknown>, ref: Ref | undefined): ChannelFrame {
  if (!isChannelName(f.channel)) throw new FrameError('bad_channel', 'channel must match [A-Za-z0-9_-]{1,64} and not be "msg"', ref)
  const channel = f.channel
  switch (f.type) {
    case 'publish':
      if (typeof f.event !== 'string' || !NAME.test(f.event)) throw new FrameError('bad_frame', 'event must match [A-Za-z0-9_-]{1,64}', ref)
      return { type: 'publish', channel, event: f.event, data: f.data === undefined ? null : f.data, ref }
    case 'members': {
      const after = f.after ?? null
      if (after !== null && (typeof after !== 'string' || !NAME.test(after))) throw new FrameError('bad_frame', 'after must be a user id', ref)
      return { type: 'members', channel, after, ref }
    }
    default: {
      const since = f.since ?? null
      if (since !== null && (typeof since !== 'string' || since.length > 64)) throw new FrameError('bad_frame', 'since must be a message id', ref)
      return { type: 'history', channel, since, ref }
    }
  }
}

function tokenOf (token: unknown, ref: Ref | undefined): string {
  if (typeof token !== 'string' || token.length === 0) throw new FrameError('bad_frame', 'token must be a non-empty string (a JWT)', ref)
  return token
}

/** A server reply frame; `ref` is echoed when the client sent one. */
export function reply (type: string, fields: Record<string, unknown>, ref: Ref | undefined): string {
  return JSON.stringify(ref === undefined ? { type, ...fields } : { type, ...fields, ref })
}

export function errorFrame (code: string, message: string, ref?: Ref): string {
  return reply('error', { code, message }, ref)
}

/**
 * A `message` frame without its id: `head + id + '"}'` is the whole frame. The data is already JSON and
 * names are from a charset that needs no escaping, so the frame is built by concatenation, once per send.
 */
export function messageHead (channel: string, event: string, dataJson: string): string {
  return `{"type":"message","channel":"${channel}","event":"${event}","data":${dataJson},"id":"`
}

export const MESSAGE_TAIL = '"}'

/**
 * What a message frame adds to its head, at most: the longest id of any kind (a channel history id,
 * `<ms>-<seq>`, has up to 41 characters) and MESSAGE_TAIL.
 */
export const ID_AND_TAIL = 41 + MESSAGE_TAIL.length
