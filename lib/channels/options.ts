import { errors } from '../errors.ts'
import type { ChannelOptions, ClientPublishContext, ClientPublishDecision, SubscribeContext } from './types.ts'
import type { HistorySettings } from '../store/channels.ts'

export type { HistorySettings }

export interface ChannelSettings {
  presenceGrace: number
  publishRate: number
  publishBurst: number
  /** Patterns in the order given, compiled. */
  history: Array<{ pattern: RegExp, settings: HistorySettings }>
  canSubscribe: ((ctx: SubscribeContext) => boolean | Promise<boolean>) | undefined
  onClientPublish: ((ctx: ClientPublishContext) => ClientPublishDecision | Promise<ClientPublishDecision>) | undefined
}

/** The option names this module owns; lib/options.ts accepts them. */
export const CHANNEL_OPTIONS = ['presenceGrace', 'publishRate', 'publishBurst', 'history', 'canSubscribe', 'onClientPublish'] as const

const PATTERN = /^[A-Za-z0-9_*-]{1,64}$/

export function normalizeChannels (options: ChannelOptions): ChannelSettings {
  const history = options.history ?? {}
  if (typeof history !== 'object' || history === null || Array.isArray(history)) throw new errors.OPTIONS('history must be an object of { pattern: { size, ttl } }')
  const compiled: ChannelSettings['history'] = []
  for (const [pattern, value] of Object.entries(history)) {
    if (!PATTERN.test(pattern)) throw new errors.OPTIONS(`history pattern "${pattern}" must use [A-Za-z0-9_-] and *`)
    if (typeof value !== 'object' || value === null) throw new errors.OPTIONS(`history.${pattern} must be { size, ttl }`)
    compiled.push({
      pattern: new RegExp('^' + pattern.replaceAll('*', '.*') + '$'),
      settings: { size: int(`history.${pattern}.size`, value.size, undefined, 1), ttl: int(`history.${pattern}.ttl`, value.ttl, 86_400_000, 1) }
    })
  }
  for (const hook of ['canSubscribe', 'onClientPublish'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw new errors.OPTIONS(`${hook} must be a function`)
  }
  return {
    presenceGrace: int('presenceGrace', options.presenceGrace, 2000, 0),
    publishRate: int('publishRate', options.publishRate, 20, 1),
    publishBurst: int('publishBurst', options.publishBurst, 10, 1),
    history: compiled,
    canSubscribe: options.canSubscribe,
    onClientPublish: options.onClientPublish
  }
}

function int (name: string, value: unknown, fallback: number | undefined, min: number): number {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new errors.OPTIONS(`${name} must be an integer ≥ ${min}, got ${String(value)}`)
  }
  return value
}
