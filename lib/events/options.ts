import { errors } from '../errors.ts'
import { EVENT_TYPES } from './types.ts'
import type { ServerEventType } from './types.ts'
import type { WebhookSettings } from './webhooks.ts'

/** Validates the `webhooks` option (docs/events.md). */
export function normalizeWebhooks (value: unknown): WebhookSettings[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new errors.OPTIONS('webhooks must be a list of { url, secret, types?, retryFor? }')
  return value.map((hook: unknown, n) => {
    const name = `webhooks[${n}]`
    if (typeof hook !== 'object' || hook === null) throw new errors.OPTIONS(`${name} must be an object { url, secret, types?, retryFor? }`)
    const { url, secret, types, retryFor, ...rest } = hook as Record<string, unknown>
    const unknown = Object.keys(rest)[0]
    if (unknown !== undefined) throw new errors.OPTIONS(`${name} has an unknown key "${unknown}"`)
    let parsed: URL | null = null
    try {
      parsed = typeof url === 'string' ? new URL(url) : null
    } catch {}
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new errors.OPTIONS(`${name}.url must be an http or https URL`)
    if (typeof secret !== 'string' || secret.length < 16) throw new errors.OPTIONS(`${name}.secret must be a string of at least 16 characters`)
    if (types !== undefined && !(Array.isArray(types) && types.length > 0 && types.every((t) => (EVENT_TYPES as readonly unknown[]).includes(t)))) {
      throw new errors.OPTIONS(`${name}.types must be a non-empty list of ${EVENT_TYPES.join(', ')}`)
    }
    if (retryFor !== undefined && (typeof retryFor !== 'number' || !Number.isSafeInteger(retryFor) || retryFor < 0)) {
      throw new errors.OPTIONS(`${name}.retryFor must be an integer ≥ 0 (ms)`)
    }
    return { url: parsed.href, secret, types: types === undefined ? null : new Set(types as ServerEventType[]), retryFor: retryFor ?? 86_400_000 }
  })
}
