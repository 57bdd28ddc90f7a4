import { errors } from '../errors.ts'

export interface ApiSettings {
  keys: string[]
  bodyLimit: number
}

/** Shortest API key: long enough that guessing one is hopeless. */
const MIN_KEY_LENGTH = 32

/** The `api` option: null (no routes) without it. */
export function normalizeApi (api: unknown): ApiSettings | null {
  if (api === undefined) return null
  if (typeof api !== 'object' || api === null) throw new errors.OPTIONS('api must be { keys: [...] }')
  for (const key of Object.keys(api)) {
    if (key !== 'keys' && key !== 'bodyLimit') throw new errors.OPTIONS(`unknown option "api.${key}"`)
  }
  const { keys, bodyLimit = 1_048_576 } = api as { keys?: unknown, bodyLimit?: unknown }
  if (!Array.isArray(keys) || keys.length === 0) throw new errors.OPTIONS('api.keys must be a non-empty list of keys')
  for (const key of keys) {
    if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH || /\s/.test(key)) {
      throw new errors.OPTIONS(`each of api.keys must be a string of at least ${MIN_KEY_LENGTH} characters without spaces`)
    }
  }
  if (typeof bodyLimit !== 'number' || !Number.isSafeInteger(bodyLimit) || bodyLimit < 1024) {
    throw new errors.OPTIONS(`api.bodyLimit must be an integer ≥ 1024, got ${String(bodyLimit)}`)
  }
  return { keys: [...keys] as string[], bodyLimit }
}
