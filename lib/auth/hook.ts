import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { asUserId } from '../protocol/names.ts'
import type { UserId } from '../validate.ts'

/** The app's own authentication, run on the upgrade request: a user id, or null to let the auth frame decide. */
export type Authenticate = (request: FastifyRequest) => UserId | null | undefined | Promise<UserId | null | undefined>

/** A socket the hook vouched for: its user, and when (a revocation after it closes the socket). */
export interface Vouched {
  userId: string
  at: number
}

const vouched = new WeakMap<FastifyRequest, Vouched>()

/** The user the hook returned for this upgrade request, if any. */
export function vouchedFor (request: FastifyRequest): Vouched | null {
  return vouched.get(request) ?? null
}

/**
 * Runs the hook; false when it refused the upgrade (the reply is sent): 401 or 403 from an error's
 * `statusCode`, 500 for anything else, logged. Never a socket for a request the hook did not pass.
 */
export async function runAuthenticate (hook: Authenticate, request: FastifyRequest, reply: FastifyReply, log: FastifyBaseLogger): Promise<boolean> {
  let result: unknown
  try {
    result = await hook(request)
  } catch (err) {
    const status = (err as { statusCode?: unknown } | null)?.statusCode
    if (status === 401 || status === 403) {
      await reply.code(status).send({ error: status === 401 ? 'unauthorized' : 'forbidden' })
      return false
    }
    log.error({ err }, 'comet: upgrade refused: the authenticate option threw')
    await reply.code(500).send({ error: 'authentication failed' })
    return false
  }
  if (result === null || result === undefined) return true
  const id = asUserId(result)
  if (id === null) {
    // What it returned may be a secret (a token, a session): its type and size only.
    const what = typeof result === 'string' ? `a string of ${result.length} characters` : typeof result === 'number' ? `the number ${result}` : `a ${typeof result}`
    log.error(`comet: upgrade refused: authenticate must return a user id matching [A-Za-z0-9_-]{1,64} (or null), got ${what}`)
    await reply.code(500).send({ error: 'authentication failed' })
    return false
  }
  vouched.set(request, { userId: id, at: Date.now() })
  return true
}
