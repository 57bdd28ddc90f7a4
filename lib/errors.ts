import createError from '@fastify/error'
import type { FastifyErrorConstructor } from '@fastify/error'

/**
 * The class of one coded error. Named here so the published types say `FastifyErrorConstructor` (a named
 * export of @fastify/error) rather than `createError.FastifyErrorConstructor`, which only some module
 * resolutions can follow.
 */
export type CometErrorConstructor<C extends string, S extends number, A extends unknown[]> = FastifyErrorConstructor<{ code: C, statusCode: S }, A>

function coded<C extends string, S extends number, A extends unknown[]> (code: C, message: string, statusCode: S, Base?: ErrorConstructor): CometErrorConstructor<C, S, A> {
  return createError<C, S, A>(code, message, statusCode, Base)
}

// Every API misuse rejects with one of these; `code` is stable, `message` says how to fix it.
export const errors = {
  OPTIONS: coded<'FST_ERR_COMET_OPTIONS', 500, [string]>('FST_ERR_COMET_OPTIONS', 'Invalid fastify-comet option: %s', 500, TypeError),
  USER_ID: coded<'FST_ERR_COMET_USER_ID', 400, [string]>('FST_ERR_COMET_USER_ID', 'Invalid user id %s: use a string or an integer matching [A-Za-z0-9_-]{1,64}', 400, TypeError),
  USER_IDS: coded<'FST_ERR_COMET_USER_IDS', 400, [string]>('FST_ERR_COMET_USER_IDS', 'Invalid user id list: %s', 400, TypeError),
  EVENT: coded<'FST_ERR_COMET_EVENT', 400, [string]>('FST_ERR_COMET_EVENT', 'Invalid event name %s: use [A-Za-z0-9_-]{1,64}', 400, TypeError),
  CHANNEL: coded<'FST_ERR_COMET_CHANNEL', 400, [string]>('FST_ERR_COMET_CHANNEL', 'Invalid channel name %s: use [A-Za-z0-9_-]{1,64}; "msg" is reserved for private messages', 400, TypeError),
  HISTORY: coded<'FST_ERR_COMET_HISTORY', 400, [string]>('FST_ERR_COMET_HISTORY', 'No history to read: %s. Configure it with the history option', 400, TypeError),
  HASH: coded<'FST_ERR_COMET_HASH', 400, [string]>('FST_ERR_COMET_HASH', 'Invalid hash: %s', 400, TypeError),
  TTL: coded<'FST_ERR_COMET_TTL', 400, [string]>('FST_ERR_COMET_TTL', 'Invalid ttl %s: use a positive integer number of milliseconds', 400, TypeError),
  DATA: coded<'FST_ERR_COMET_DATA', 400, [string]>('FST_ERR_COMET_DATA', 'Invalid data: %s. Send a JSON value (no BigInt, functions, undefined or cycles)', 400, TypeError),
  PAYLOAD_TOO_LARGE: coded<'FST_ERR_COMET_PAYLOAD_TOO_LARGE', 413, [number, number]>('FST_ERR_COMET_PAYLOAD_TOO_LARGE', 'The message is %d bytes, over maxPayload (%d bytes)', 413),
  UNAVAILABLE: coded<'FST_ERR_COMET_UNAVAILABLE', 503, [string, { cause: unknown }?]>('FST_ERR_COMET_UNAVAILABLE', 'The comet store is unavailable: %s', 503),
  EVENTS: coded<'FST_ERR_COMET_EVENTS', 400, [string]>('FST_ERR_COMET_EVENTS', 'Cannot listen to server events: %s', 400, TypeError),
  IDEMPOTENCY_KEY: coded<'FST_ERR_COMET_IDEMPOTENCY_KEY', 400, [string]>('FST_ERR_COMET_IDEMPOTENCY_KEY', 'Invalid idempotencyKey %s: use [A-Za-z0-9_.:-]{1,128}', 400, TypeError),
  API_KEY: coded<'FST_ERR_COMET_API_KEY', 401, []>('FST_ERR_COMET_API_KEY', 'Missing or wrong API key: send Authorization: Bearer <one of api.keys>', 401),
  API_METHOD: coded<'FST_ERR_COMET_API_METHOD', 404, [string]>('FST_ERR_COMET_API_METHOD', 'Unknown API method %s', 404),
  API_PARAMS: coded<'FST_ERR_COMET_API_PARAMS', 400, [string]>('FST_ERR_COMET_API_PARAMS', 'Invalid API request: %s', 400),
  API_BODY_TOO_LARGE: coded<'FST_ERR_COMET_API_BODY_TOO_LARGE', 413, [number]>('FST_ERR_COMET_API_BODY_TOO_LARGE', 'The request body is over api.bodyLimit (%d bytes)', 413),
  CLOSED: coded<'FST_ERR_COMET_CLOSED', 503, []>('FST_ERR_COMET_CLOSED', 'fastify-comet is closed: the app is shutting down or the emitter was closed', 503)
} as const
