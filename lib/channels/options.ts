import { errors } from '../errors.ts'
import type { ChannelOptions, ClientPublishContext, ClientPublishDecision, SubscribeContext } from './types.ts'
import type { HistorySettings } from '../store/channels.ts'
import { intOption } from '../validate.ts'

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
      settings: { size: intOption(`history.${pattern}.size`, value.size, undefined, 1), ttl: intOption(`history.${pattern}.ttl`, value.ttl, 86_400_000, 1) }
    })
  }
  for (const hook of ['canSubscribe', 'onClientPublish'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw new errors.OPTIONS(`${hook} must be a function`)
  }
  return {
    presenceGrace: intOption('presenceGrace', options.presenceGrace, 2000, 0),
    publishRate: intOption('publishRate', options.publishRate, 20, 1),
    publishBurst: intOption('publishBurst', options.publishBurst, 10, 1),
    history: compiled,
    canSubscribe: options.canSubscribe,
    onClientPublish: options.onClientPublish
  }
}
