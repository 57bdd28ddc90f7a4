import { errors } from '../errors.ts'
import { normalize } from '../options.ts'
import type { Settings } from '../options.ts'
import type { EmitterOptions } from './types.ts'

/**
 * The plugin's options that shape stored data or its reading, which an emitter must share with the app's
 * instances. Everything else (routes, sockets, limits) is the instances' own.
 */
const EMITTER_OPTIONS = new Set(['redis', 'keyPrefix', 'shardedPubSub', 'offlineQueue', 'resume', 'history', 'maxPayload',
  'minHashLength', 'idempotencyTtl', 'lastSeenTtl', 'heartbeatInterval', 'presenceGrace', 'logger'])

/** Checks an emitter's options with the plugin's own code: the same defaults, the same errors. */
export function normalizeEmitter (options: EmitterOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new errors.OPTIONS('options must be an object')
  for (const key of Object.keys(options)) {
    if (!EMITTER_OPTIONS.has(key)) throw new errors.OPTIONS(`unknown emitter option "${key}" (an emitter takes ${[...EMITTER_OPTIONS].join(', ')})`)
  }
  if (options.redis === undefined) throw new errors.OPTIONS('redis is required: an emitter reaches the app\'s instances through Redis (memory cannot span processes)')
  const { logger, ...shared } = options
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function')) {
    throw new errors.OPTIONS('logger must have a warn(obj, msg) method, like pino')
  }
  return normalize(shared)
}
