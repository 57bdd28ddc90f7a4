import { createPublicKey, KeyObject } from 'node:crypto'
import { createDecoder, createVerifier } from 'fast-jwt'
import type { Algorithm } from 'fast-jwt'
import { errors } from '../errors.ts'
import { asUserId, NAME } from '../protocol/names.ts'

/** A token's verified payload, as `canSubscribe` and `onClientPublish` receive it. */
export type Claims = Record<string, unknown>

export type JwtKey = string | Buffer | KeyObject

export interface JwtOptions {
  /** HMAC secret: tokens signed with HS256, HS384 or HS512. */
  secret?: JwtKey
  /** Public key (PEM or KeyObject): RS*, PS*, ES* or EdDSA, as the key's type allows. */
  publicKey?: JwtKey
  /** Looks up the key for a token's header (JWKS: see `get-jwks`); a public key or a secret. */
  key?: (header: Record<string, unknown>) => JwtKey | Promise<JwtKey>
  /** Allowed `alg` values. @default those of the key's type; `none` is never allowed */
  algorithms?: string[]
  /** Required `iss`: one value or a list. */
  issuer?: string | string[]
  /** Required `aud`: one value or a list (the token must name one of them). */
  audience?: string | string[]
  /** Seconds of leeway on `exp` and `nbf`. @default 0 */
  clockTolerance?: number
  /** How long `revokeAuth` refuses tokens issued before it, in ms. @default 604800000 (7 days) */
  revocationTtl?: number
}

/** A verified token: whose it is, and until when it holds. */
export interface Verified {
  userId: string
  claims: Claims
  /** When the token stops being accepted (`exp` plus the tolerance), in ms; null without `exp`. */
  expires: number | null
  /** `iat` in ms, 0 without one: a revocation refuses tokens issued before it. */
  issuedAt: number
}

/** Why a token was refused: `expired`, or anything else; `sub` (unverified) keys the failed-auth delay. */
export class TokenRejected extends Error {
  readonly expired: boolean
  readonly sub: string
  constructor (message: string, expired: boolean, sub: string) {
    super(message)
    this.expired = expired
    this.sub = sub
  }
}

export interface JwtSettings {
  verify (token: string): Promise<Verified>
  revocationTtl: number
}

const HS = ['HS256', 'HS384', 'HS512']
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
/** How long `revokeAuth` refuses tokens issued before it, by default: 7 days. */
export const REVOCATION_TTL = 604_800_000

const KNOWN = new Set(['secret', 'publicKey', 'key', 'algorithms', 'issuer', 'audience', 'clockTolerance', 'revocationTtl'])
const decode = createDecoder()

/** Validates the `jwt` option and builds its verifier; a bad option throws FST_ERR_COMET_OPTIONS saying what. */
export function normalizeJwt (value: unknown): JwtSettings | null {
  if (value === undefined) return null
  if (typeof value !== 'object' || value === null) throw new errors.OPTIONS('jwt must be an object: { secret } or { publicKey } or { key }')
  const opts = value as JwtOptions
  for (const name of Object.keys(opts)) if (!KNOWN.has(name)) throw new errors.OPTIONS(`unknown option "jwt.${name}"`)
  const given = (['secret', 'publicKey', 'key'] as const).filter((name) => opts[name] !== undefined)
  if (given.length !== 1) throw new errors.OPTIONS(`jwt needs exactly one of secret, publicKey or key${given.length > 1 ? `, got ${given.join(' and ')}` : ''}`)
  const algorithms = opts.algorithms
  if (algorithms !== undefined) {
    if (!Array.isArray(algorithms) || algorithms.length === 0) throw new errors.OPTIONS('jwt.algorithms must be a non-empty list')
    for (const alg of algorithms) {
      if (alg === 'none') throw new errors.OPTIONS('jwt.algorithms may not contain "none": unsigned tokens are never accepted')
      if (!HS.includes(alg) && !ASYMMETRIC.includes(alg)) throw new errors.OPTIONS(`jwt.algorithms: unknown algorithm ${JSON.stringify(alg)}`)
    }
  }
  const tolerance = opts.clockTolerance ?? 0
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) throw new errors.OPTIONS('jwt.clockTolerance must be a number of seconds ≥ 0')
  const revocationTtl = opts.revocationTtl ?? REVOCATION_TTL
  if (typeof revocationTtl !== 'number' || !Number.isSafeInteger(revocationTtl) || revocationTtl < 1) {
    throw new errors.OPTIONS('jwt.revocationTtl must be an integer number of ms ≥ 1')
  }
  const allowedIss = claimList('issuer', opts.issuer)
  const allowedAud = claimList('audience', opts.audience)
  const common = {
    clockTolerance: tolerance * 1000,
    allowedIss,
    allowedAud,
    // fast-jwt checks iss and aud only when the token has them: a configured one must be there.
    requiredClaims: [...(allowedIss === undefined ? [] : ['iss']), ...(allowedAud === undefined ? [] : ['aud'])]
  }

  let verifier: (token: string) => unknown
  try {
    if (opts.secret !== undefined) {
      const allowed = algorithms ?? HS
      if (!allowed.every((alg) => HS.includes(alg))) throw new errors.OPTIONS('jwt.secret verifies HMAC tokens only (HS256, HS384, HS512); use publicKey for the others')
      verifier = createVerifier({ ...common, key: secretOf(opts.secret), algorithms: allowed as Algorithm[] })
    } else if (opts.publicKey !== undefined) {
      if (algorithms?.some((alg) => HS.includes(alg)) === true) throw new errors.OPTIONS('jwt.publicKey cannot verify HMAC (HS*) tokens: anyone holding the public key could sign them')
      verifier = createVerifier({ ...common, key: publicPem(opts.publicKey, 'jwt.publicKey'), ...(algorithms === undefined ? {} : { algorithms: algorithms as Algorithm[] }) })
    } else {
      const lookup = opts.key
      if (typeof lookup !== 'function') throw new errors.OPTIONS('jwt.key must be a function (header) => key, for JWKS')
      verifier = createVerifier({
        ...common,
        ...(algorithms === undefined ? {} : { algorithms: algorithms as Algorithm[] }),
        key: async ({ header }: { header: Record<string, unknown> }) => await fetchedKey(lookup, header)
      })
    }
  } catch (err) {
    if (err instanceof errors.OPTIONS) throw err
    throw new errors.OPTIONS(`jwt: ${(err as Error).message}`)
  }

  return {
    revocationTtl,
    async verify (token: string): Promise<Verified> {
      let payload: unknown
      try {
        payload = await verifier(token)
      } catch (err) {
        const code = (err as { code?: string }).code
        throw new TokenRejected(code === 'FAST_JWT_EXPIRED' ? 'token expired' : 'invalid token', code === 'FAST_JWT_EXPIRED', unverifiedSub(token))
      }
      const claims = payload as Claims
      const sub = asUserId(claims.sub)
      if (sub === null) throw new TokenRejected('sub must be a user id matching [A-Za-z0-9_-]{1,64}', false, '')
      return {
        userId: sub,
        claims,
        expires: typeof claims.exp === 'number' ? claims.exp * 1000 + common.clockTolerance : null,
        issuedAt: typeof claims.iat === 'number' ? claims.iat * 1000 : 0
      }
    }
  }
}

function claimList (name: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  const list = Array.isArray(value) ? value : [value]
  if (list.length === 0 || !list.every((v) => typeof v === 'string' && v.length > 0)) throw new errors.OPTIONS(`jwt.${name} must be a non-empty string or a list of them`)
  return list as string[]
}

function isPem (key: string | Buffer): boolean {
  return key.toString('latin1', 0, 200).includes('-----BEGIN')
}

function secretOf (secret: JwtKey): Buffer {
  if (secret instanceof KeyObject) {
    if (secret.type !== 'secret') throw new errors.OPTIONS('jwt.secret must be a secret, not a public or private key: use publicKey')
    return secret.export()
  }
  if ((typeof secret !== 'string' && !Buffer.isBuffer(secret)) || secret.length === 0) throw new errors.OPTIONS('jwt.secret must be a non-empty string, Buffer or secret KeyObject')
  if (isPem(secret)) throw new errors.OPTIONS('jwt.secret looks like a PEM key: use publicKey, so it is never taken for an HMAC secret')
  return Buffer.from(secret)
}

/** A public key as SPKI PEM; a private key is reduced to its public half. */
function publicPem (key: JwtKey, name: string): string {
  try {
    const object = key instanceof KeyObject ? (key.type === 'private' ? createPublicKey(key) : key) : createPublicKey(key)
    if (object.type !== 'public') throw new Error('not a public key')
    return object.export({ type: 'spki', format: 'pem' }) as string
  } catch {
    throw new errors.OPTIONS(`${name} must be a PEM public key (or a KeyObject): RSA, EC or Ed25519`)
  }
}

/**
 * A key from the app's lookup, for fast-jwt (a string or Buffer). A public key is never handed over for an
 * HMAC token: fast-jwt would take a PEM for a secret when only HS algorithms are allowed.
 */
async function fetchedKey (lookup: NonNullable<JwtOptions['key']>, header: Record<string, unknown>): Promise<string | Buffer> {
  const key = await lookup(header)
  const hmac = typeof header.alg === 'string' && HS.includes(header.alg)
  if (key instanceof KeyObject) {
    if (key.type === 'secret' && hmac) return key.export()
    if (key.type !== 'secret' && !hmac) return publicPem(key, 'the key')
  } else if (typeof key === 'string' || Buffer.isBuffer(key)) {
    if (isPem(key) !== hmac) return key
  }
  throw new Error('the key does not fit the token\'s algorithm')
}

function unverifiedSub (token: string): string {
  try {
    const sub = (decode(token) as Claims).sub
    return typeof sub === 'string' && NAME.test(sub) ? sub : ''
  } catch {
    return ''
  }
}
