import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'
import type { OperationSettings } from './options.ts'
import { SAMPLE_MS, SAMPLES } from './metrics.ts'
import type { FailedAuth, Recorder, Sample } from './metrics.ts'
import type { Running } from './running.ts'

/** What each instance reports into the store at every heartbeat (JSON), and lapses after 3 heartbeats. */
export interface InstanceReport {
  id: string
  /** host:port it listens on, or null before it listens. */
  address: string | null
  /** When it started (ms since the epoch). */
  started: number
  connections: number
  users: number
  /** Messages per second now: sent from it (sendToUser, publish) and delivered by it (frames to sockets). */
  rates: { sent: number, delivered: number }
  samples: Sample[]
  failedAuths: FailedAuth[]
}

/** The page's files, shipped in the package next to lib/ and dist/. */
const FILES: Record<string, [file: string, type: string]> = {
  '': ['index.html', 'text/html; charset=utf-8'],
  '/admin.js': ['admin.js', 'text/javascript; charset=utf-8'],
  '/admin.css': ['admin.css', 'text/css; charset=utf-8']
}
const STATIC = new URL('../../static/admin/', import.meta.url)
/** The page loads only its own files and talks only to its own API. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
const TOP_CHANNELS = 50
const FAILED_AUTHS = 50

type AdminSettings = NonNullable<OperationSettings['admin']>

/**
 * The admin page at `${base}/admin` and its JSON API under `${base}/admin/api/`, all behind `authorize`;
 * and this instance's report, written to the store at every heartbeat so every instance's page sees the
 * whole cluster.
 */
export function serveAdmin (app: FastifyInstance, routes: FastifyInstance, base: string, settings: AdminSettings, recorder: Recorder, running: Running): void {
  const root = `${base}/admin`
  const started = Date.now()
  const { store, instance, heartbeatInterval } = running

  const report = (): InstanceReport => ({
    id: instance,
    address: addressOf(app),
    started,
    connections: running.conns.size,
    users: running.hub.users.size,
    rates: recorder.rates(),
    samples: recorder.samples,
    failedAuths: recorder.failedAuths
  })
  const publish = async (): Promise<void> => {
    try {
      await store.report(instance, JSON.stringify(report()), 3 * heartbeatInterval)
    } catch (err) {
      app.log.debug({ err }, 'comet: admin report failed')
    }
  }
  recorder.startSampling()
  const timer = setInterval(publish, heartbeatInterval).unref()
  publish().catch(() => {})
  app.addHook('onListen', publish)
  app.addHook('preClose', async () => {
    clearInterval(timer)
    await store.report(instance, null, 0).catch(() => {})
  })

  const guard = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let allowed: unknown
    try {
      allowed = await settings.authorize(request, reply)
    } catch (err) {
      const status = (err as { statusCode?: unknown }).statusCode
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return await reply.code(status).send({ error: (err as Error).message })
      }
      throw err
    }
    if (allowed === true) return
    // No credentials at all: 401 (log in). Credentials that authorize refused: 403.
    const credentials = request.headers.authorization !== undefined || request.headers.cookie !== undefined
    return await reply.code(credentials ? 403 : 401).send({ error: credentials ? 'not allowed to use the admin page' : 'authentication required' })
  }
  // Cookies go with cross-site form posts: a change must come from the page's own origin.
  const sameOrigin = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = request.headers.origin
    let host: string | null = null
    try {
      host = origin === undefined ? null : new URL(origin).host
    } catch {}
    if (origin !== undefined && host !== request.headers.host) return await reply.code(403).send({ error: 'cross-origin request refused' })
    if (request.headers['content-type']?.startsWith('application/json') !== true) {
      return await reply.code(415).send({ error: 'send a JSON body (content-type: application/json)' })
    }
  }
  const files = new Map<string, Promise<Buffer>>()
  for (const [suffix, [file, type]] of Object.entries(FILES)) {
    routes.get(`${root}${suffix}`, { onRequest: guard }, async (_request, reply) => {
      let body = files.get(file)
      if (body === undefined) files.set(file, body = readFile(new URL(file, STATIC)))
      return await reply.type(type).header('cache-control', 'no-cache').header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff').send(await body)
    })
  }
  type ApiRequest = FastifyRequest<{ Params: { userId: string }, Querystring: { search?: string }, Body: { event?: string, data?: unknown } | null }>
  const api = (method: 'GET' | 'POST', route: string, handler: (request: ApiRequest) => Promise<unknown>): void => {
    routes.route<{ Params: { userId: string }, Querystring: { search?: string }, Body: { event?: string, data?: unknown } | null }>({
      method,
      url: `${root}/api/${route}`,
      onRequest: method === 'POST' ? [guard, sameOrigin] : guard,
      handler: async (request, reply) => {
        const result = await handler(request)
        return await reply.header('cache-control', 'no-store').send(result ?? { ok: true })
      }
    })
  }

  api('GET', 'overview', async () => {
    const self = report()
    const others = (await store.reports()).map((text) => JSON.parse(text) as InstanceReport).filter((r) => r.id !== instance)
    const all = [self, ...others].sort((a, b) => a.started - b.started)
    const now = Date.now()
    return {
      now,
      self: instance,
      store: running.storeKind,
      instances: all.map(({ samples: _s, failedAuths: _f, started: at, ...rest }) => ({ ...rest, started: at, uptime: now - at })),
      totals: {
        instances: all.length,
        connections: sum(all, (r) => r.connections),
        users: sum(all, (r) => r.users),
        sent: round(sum(all, (r) => r.rates.sent)),
        delivered: round(sum(all, (r) => r.rates.delivered))
      },
      chart: chart(all, now),
      failedAuths: all.flatMap((r) => r.failedAuths.map((f) => ({ ...f, instance: r.id })))
        .sort((a, b) => b.at - a.at).slice(0, FAILED_AUTHS)
    }
  })
  api('GET', 'channels', async (request) => {
    const search = String(request.query.search ?? '').toLowerCase()
    const all = (await app.comet.channels()).filter((c) => c.channel.toLowerCase().includes(search))
    all.sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1))
    return { matched: all.length, channels: all.slice(0, TOP_CHANNELS) }
  })
  api('GET', 'users/:userId', async (request) => {
    const { userId } = request.params
    const presence = await app.comet.presence(userId)
    const { devices, queued } = await store.inspect(userId).catch((err: unknown) => {
      throw new errors.UNAVAILABLE((err as Error).message, { cause: err })
    })
    const perInstance = new Map<string, number>()
    for (const device of devices) {
      // Device ids are `<attach ms>.<instance>.<n>`.
      const at = device.split('.')[1] ?? '?'
      perInstance.set(at, (perInstance.get(at) ?? 0) + 1)
    }
    return {
      userId,
      online: presence.online,
      devices: presence.devices,
      lastSeen: presence.lastSeen,
      queued,
      instances: [...perInstance].map(([id, count]) => ({ id, devices: count }))
    }
  })
  api('POST', 'users/:userId/revoke', async (request) => {
    await app.comet.revokeAuth(request.params.userId)
    request.log.info({ userId: request.params.userId }, 'comet: revoked from the admin page')
  })
  api('POST', 'users/:userId/send', async (request) => {
    const { event = 'admin_test', data = null } = request.body ?? {}
    return await app.comet.sendToUser(request.params.userId, event, data)
  })
}

/** host:port this app listens on; the machine's name when it listens on every interface. */
function addressOf (app: FastifyInstance): string | null {
  const address = app.server.address() as AddressInfo | string | null
  if (address === null || typeof address === 'string') return address
  const host = address.address === '0.0.0.0' || address.address === '::' ? hostname() : address.address
  return `${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

/** Messages per second over the last 15 minutes: every instance's samples summed per 10 s bucket, then now. */
function chart (reports: InstanceReport[], now: number): { from: number, to: number, points: Array<[at: number, sent: number, delivered: number]> } {
  const last = now - now % SAMPLE_MS - SAMPLE_MS
  const first = last - (SAMPLES - 1) * SAMPLE_MS
  const points: Array<[number, number, number]> = []
  for (let at = first; at <= last; at += SAMPLE_MS) points.push([at, 0, 0])
  for (const report of reports) {
    for (const [at, sent, delivered] of report.samples) {
      const point = points[Math.round((at - first) / SAMPLE_MS)]
      if (point === undefined) continue
      point[1] += sent / (SAMPLE_MS / 1000)
      point[2] += delivered / (SAMPLE_MS / 1000)
    }
  }
  // The samples' points are at the middle of their 10 s; the last point is now, at the current rates.
  for (const point of points) {
    point[0] += SAMPLE_MS / 2
    point[1] = round(point[1])
    point[2] = round(point[2])
  }
  points.push([now, round(sum(reports, (r) => r.rates.sent)), round(sum(reports, (r) => r.rates.delivered))])
  return { from: now - SAMPLES * SAMPLE_MS, to: now, points }
}

function sum<T> (items: T[], of: (item: T) => number): number {
  return items.reduce((n, item) => n + of(item), 0)
}

function round (n: number): number { return Math.round(n * 10) / 10 }
