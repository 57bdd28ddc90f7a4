import type { ServerApi } from './index.ts'
import { MAX_USERS } from '../validate.ts'

// The HTTP API's methods: each one's named params (JSON Schema, for the docs) and how they map onto the
// server API's arguments.

type Params = Record<string, any>

/** Most commands in one batch. */
export const MAX_COMMANDS = 1000

const userId = { type: ['string', 'integer'], description: 'A string or an integer matching [A-Za-z0-9_-]{1,64}' }
const channel = { type: 'string', description: '[A-Za-z0-9_-]{1,64}, not "msg"' }
const event = { type: 'string', description: '[A-Za-z0-9_-]{1,64}' }
const data = { description: 'Any JSON value' }
const idempotencyKey = {
  type: 'string',
  description: '[A-Za-z0-9_.:-]{1,128}: a repeat within idempotencyTtl delivers nothing and gets the first result'
}
const stats = {
  type: 'object',
  properties: { subscribers: { type: 'integer' }, users: { type: 'integer' } },
  required: ['subscribers', 'users']
}

function body (properties: Record<string, object>, required: string[] = []): { type: 'object', properties: Record<string, object>, required: string[], additionalProperties: false } {
  return { type: 'object', properties, required, additionalProperties: false }
}

interface Method {
  summary: string
  body: ReturnType<typeof body>
  result: object
  call (api: ServerApi, p: Params): Promise<unknown>
}

export const METHODS = {
  registerAuth: {
    summary: 'Stores the user\'s secret (as a SHA-256 digest); ttl in ms, without it until revokeAuth',
    body: body({ userId, hash: { type: 'string' }, ttl: { type: 'integer', minimum: 1 } }, ['userId', 'hash']),
    result: { type: 'null' },
    call: async (api, p) => await api.registerAuth(p.userId, p.hash, p.ttl === undefined ? undefined : { ttl: p.ttl })
  },
  createAuth: {
    summary: 'Makes a fresh secret for the user (256 random bits, base64url), registers it and returns it; ttl in ms',
    body: body({ userId, ttl: { type: 'integer', minimum: 1 } }, ['userId']),
    result: { type: 'string' },
    call: async (api, p) => await api.createAuth(p.userId, p.ttl === undefined ? undefined : { ttl: p.ttl })
  },
  revokeAuth: {
    summary: 'Deletes the user\'s hash and closes their sockets on every instance (4401)',
    body: body({ userId }, ['userId']),
    result: { type: 'null' },
    call: async (api, p) => await api.revokeAuth(p.userId)
  },
  sendToUser: {
    summary: 'Delivers to every device of the user, or queues it when none is online',
    body: body({ userId, event, data, idempotencyKey }, ['userId', 'event', 'data']),
    result: { type: 'object', properties: { id: { type: 'string' }, queued: { type: 'boolean' } }, required: ['id', 'queued'] },
    call: async (api, p) => await api.sendToUser(p.userId, p.event, p.data, once(p))
  },
  sendToUsers: {
    summary: 'sendToUser for up to 10,000 users, the message serialized once: one result per distinct user id, in order',
    body: body({ userIds: { type: 'array', items: userId, maxItems: MAX_USERS }, event, data }, ['userIds', 'event', 'data']),
    result: {
      type: 'array',
      items: { type: 'object', properties: { userId: { type: 'string' }, id: { type: 'string' }, queued: { type: 'boolean' } }, required: ['userId', 'id', 'queued'] }
    },
    call: async (api, p) => await api.sendToUsers(p.userIds, p.event, p.data)
  },
  publish: {
    summary: 'Delivers to every subscriber of the channel; kept when the channel has history',
    body: body({ channel, event, data, idempotencyKey }, ['channel', 'event', 'data']),
    result: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
    call: async (api, p) => await api.publish(p.channel, p.event, p.data, once(p))
  },
  isOnline: {
    summary: 'Whether a device of the user is connected to any live instance',
    body: body({ userId }, ['userId']),
    result: { type: 'boolean' },
    call: async (api, p) => await api.isOnline(p.userId)
  },
  presence: {
    summary: 'The user\'s connected devices across instances, and when the last one left',
    body: body({ userId }, ['userId']),
    result: {
      type: 'object',
      properties: { online: { type: 'boolean' }, devices: { type: 'integer' }, lastSeen: { type: ['string', 'null'], format: 'date-time' } },
      required: ['online', 'devices', 'lastSeen']
    },
    call: async (api, p) => await api.presence(p.userId)
  },
  members: {
    summary: 'Members of a track_* channel, or [id] / [] for user_status_<id>',
    body: body({ channel }, ['channel']),
    result: { type: 'array', items: { type: 'string' } },
    call: async (api, p) => await api.members(p.channel)
  },
  channelStats: {
    summary: 'Subscribed connections and distinct users of a channel, across instances',
    body: body({ channel }, ['channel']),
    result: stats,
    call: async (api, p) => await api.channelStats(p.channel)
  },
  channels: {
    summary: 'Channels with a subscriber on any instance, with their counts',
    body: body({}),
    result: { type: 'array', items: { ...stats, properties: { channel, ...stats.properties }, required: ['channel', ...stats.required] } },
    call: async (api) => await api.channels()
  },
  history: {
    summary: 'The channel\'s kept messages after since (all without it), or recovered: false',
    body: body({ channel, since: { type: 'string', description: 'The id of the last message seen' } }, ['channel']),
    result: {
      type: 'object',
      properties: { recovered: { type: 'boolean' }, messages: { type: 'array', items: { type: 'object', additionalProperties: true } } },
      required: ['recovered', 'messages']
    },
    call: async (api, p) => await api.history(p.channel, p.since)
  }
} satisfies Record<string, Method>

export type MethodName = keyof typeof METHODS

function once (p: Params): { idempotencyKey: string } | undefined {
  return p.idempotencyKey === undefined ? undefined : { idempotencyKey: p.idempotencyKey }
}

export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] }
  },
  required: ['error']
}

export const BATCH_SCHEMA = {
  body: {
    type: 'object',
    properties: {
      commands: {
        type: 'array',
        maxItems: MAX_COMMANDS,
        items: {
          type: 'object',
          properties: { method: { type: 'string', enum: Object.keys(METHODS) }, params: { type: 'object' } },
          required: ['method']
        }
      }
    },
    required: ['commands'],
    additionalProperties: false
  },
  result: {
    type: 'object',
    properties: {
      replies: { type: 'array', items: { type: 'object', properties: { result: {}, error: ERROR_SCHEMA.properties.error } } }
    },
    required: ['replies']
  }
}
