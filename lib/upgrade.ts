import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { runAuthenticate } from './auth/hook.ts'
import type { AuthLimits } from './auth/limits.ts'
import type { AddressCounts } from './connections/addresses.ts'
import type { Metrics } from './operations/metrics.ts'
import type { Settings } from './options.ts'
import { negotiate, PROTOCOL } from './protocol/version.ts'

export interface UpgradeContext {
  settings: Settings
  log: FastifyBaseLogger
  limits: AuthLimits | null
  anonymous: AddressCounts
  metrics: Metrics | null
}

/**
 * The checks made before the WebSocket opens: a page from another site (cross-site WebSocket hijacking),
 * an address that keeps failing to authenticate or holds too many unauthenticated sockets, a client that
 * speaks none of our protocol versions, and the app's `authenticate` hook. A refused upgrade gets an HTTP
 * answer; the socket route's onRequest hook.
 */
export function upgradeChecks ({ settings, log, limits, anonymous, metrics }: UpgradeContext) {
  return async function checkUpgrade (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (!originAllowed(request.headers.origin, `${request.protocol}://${request.host}`, settings.allowedOrigins)) {
      log.info({ origin: request.headers.origin }, 'comet: upgrade refused: origin not allowed')
      return await reply.code(403).send({ error: 'origin not allowed' })
    }
    if (limits?.blocked(request.ip) === true) {
      metrics?.auth('rate_limited', request.ip)
      return await reply.code(429).send({ error: 'too many failed authentications; retry later' })
    }
    if (settings.maxAnonymousPerAddress > 0 && anonymous.count(request.ip) >= settings.maxAnonymousPerAddress) {
      log.info({ address: request.ip }, 'comet: upgrade refused: too many unauthenticated sockets from the address')
      return await reply.code(429).send({ error: 'too many unauthenticated connections from this address' })
    }
    if (!negotiate(request.raw.headers)) {
      return await reply.code(400).send({ error: `unsupported WebSocket subprotocol: this server speaks ${PROTOCOL}` })
    }
    if (settings.authenticate !== undefined && !(await runAuthenticate(settings.authenticate, request, reply, log))) return reply
  }
}

/**
 * By default a page may open the socket only from the request's own origin: scheme, host and port, as
 * the request shows them (behind a trusted proxy, its X-Forwarded-Proto and X-Forwarded-Host).
 */
function originAllowed (origin: string | undefined, own: string, allowed: Set<string> | '*' | null): boolean {
  if (origin === undefined || allowed === '*') return true
  if (allowed !== null) return allowed.has(origin.toLowerCase())
  try {
    return new URL(origin).origin === new URL(own).origin
  } catch {
    return false
  }
}
