import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'
import type { ServerApi } from './index.ts'
import type { ApiSettings } from './options.ts'
import { METHODS, BATCH_SCHEMA, ERROR_SCHEMA, MAX_COMMANDS } from './schemas.ts'
import type { MethodName } from './schemas.ts'

type Reply = { result: unknown } | { error: { code: string, message: string } }

/**
 * The HTTP API: `POST ${path}/api/<method>` for each server API method, with its named params as the
 * JSON body, and `POST ${path}/api/batch`. Params are checked by the methods themselves, so a call over
 * HTTP, in a batch or in-process fails with the same coded error; the JSON Schemas document the routes
 * (for @fastify/swagger) and are not used to validate.
 */
export function apiRoutes (app: FastifyInstance, path: string, settings: ApiSettings, api: ServerApi): void {
  const base = `${path === '/' ? '' : path}/api`
  const keys = settings.keys.map(sha256)
  const route = {
    bodyLimit: settings.bodyLimit,
    onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
      if (!authorized(request.headers.authorization, keys)) {
        await reply.code(401).header('www-authenticate', 'Bearer realm="comet"').send(errorBody(new errors.API_KEY()))
      }
    },
    errorHandler: (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const coded = asCoded(err, settings.bodyLimit)
      if (coded.code === INTERNAL) request.log.error({ err }, 'comet: api request failed')
      return reply.code(coded.statusCode).send(errorBody(coded))
    },
    // The methods check their params (the same errors in-process, over HTTP and in a batch): the schemas
    // document the routes; the reply is plain JSON, Dates as ISO strings.
    validatorCompiler: () => () => true,
    serializerCompiler: () => (data: unknown) => JSON.stringify(data)
  }

  for (const [name, method] of Object.entries(METHODS) as Array<[MethodName, typeof METHODS[MethodName]]>) {
    app.post(`${base}/${name}`, {
      ...route,
      schema: {
        summary: method.summary,
        tags: ['comet'],
        headers: AUTH_HEADER,
        body: method.body,
        response: { 200: { type: 'object', properties: { result: method.result }, required: ['result'] }, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA }
      }
    }, async (request) => ({ result: await invoke(api, name, request.body) }))
  }

  app.post(`${base}/batch`, {
    ...route,
    schema: {
      summary: `Runs up to ${MAX_COMMANDS} commands in order, each on its own: a failed command fails alone`,
      tags: ['comet'],
      headers: AUTH_HEADER,
      body: BATCH_SCHEMA.body,
      response: { 200: BATCH_SCHEMA.result, '4xx': ERROR_SCHEMA, '5xx': ERROR_SCHEMA }
    }
  }, async (request) => ({ replies: await batch(api, request.body, request) }))

  // Hidden from the docs (@fastify/swagger's `hide`): any other name is an unknown method.
  const unknown = { ...route, schema: { hide: true } as object }
  app.post(`${base}/:method`, unknown, async (request: FastifyRequest) => {
    throw new errors.API_METHOD(JSON.stringify((request.params as { method: string }).method))
  })
}

const AUTH_HEADER = {
  type: 'object',
  properties: { authorization: { type: 'string', description: 'Bearer <one of the api.keys>' } },
  required: ['authorization']
}

function sha256 (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Compares digests in constant time against every key, so timing tells neither the key nor which matched. */
function authorized (header: string | undefined, keys: Buffer[]): boolean {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header)
  const presented = sha256(match?.[1] ?? '')
  let ok = false
  for (const key of keys) ok = timingSafeEqual(presented, key) || ok
  return ok && match !== null
}

/** One method call from its named params; rejects with the method's own coded errors. */
async function invoke (api: ServerApi, name: string, params: unknown): Promise<unknown> {
  if (!Object.hasOwn(METHODS, name)) throw new errors.API_METHOD(JSON.stringify(name))
  const method = METHODS[name as MethodName]
  const p = params ?? {}
  if (typeof p !== 'object' || Array.isArray(p)) throw new errors.API_PARAMS(`the params of ${name} must be a JSON object`)
  const names = Object.keys(method.body.properties)
  for (const key of Object.keys(p)) {
    if (!names.includes(key)) throw new errors.API_PARAMS(`${name} has no param ${JSON.stringify(key)}; its params are ${names.join(', ') || 'none'}`)
  }
  // null stands for an absent optional param, as JSON encoders in other languages write it; data may be null.
  const given = Object.fromEntries(Object.entries(p).filter(([param, value]) => value !== null || param === 'data'))
  return await method.call(api, given) ?? null
}

/** Runs the commands in order; consecutive calls of one method run together (they share round trips). */
async function batch (api: ServerApi, body: unknown, request: FastifyRequest): Promise<Reply[]> {
  const commands = (body as { commands?: unknown } | null)?.commands
  if (typeof body !== 'object' || body === null || !Array.isArray(commands)) throw new errors.API_PARAMS('the body must be { "commands": [ { "method", "params" }, … ] }')
  for (const k of Object.keys(body)) if (k !== 'commands') throw new errors.API_PARAMS(`unknown field ${JSON.stringify(k)}; the body is { "commands": [...] }`)
  if (commands.length > MAX_COMMANDS) throw new errors.API_PARAMS(`a batch holds at most ${MAX_COMMANDS} commands, got ${commands.length}`)
  const replies: Reply[] = []
  for (let i = 0; i < commands.length;) {
    const method = methodOf(commands[i])
    const run: unknown[] = []
    for (; i < commands.length && methodOf(commands[i]) === method; i++) run.push(commands[i])
    replies.push(...await Promise.all(run.map(async (command) => await one(api, command, request))))
  }
  return replies
}

function methodOf (command: unknown): unknown {
  return typeof command === 'object' && command !== null ? (command as { method?: unknown }).method : undefined
}

async function one (api: ServerApi, command: unknown, request: FastifyRequest): Promise<Reply> {
  try {
    if (typeof command !== 'object' || command === null || Array.isArray(command)) throw new errors.API_PARAMS('each command must be { "method", "params" }')
    const { method, params, ...rest } = command as { method?: unknown, params?: unknown }
    const extra = Object.keys(rest)[0]
    if (extra !== undefined) throw new errors.API_PARAMS(`unknown field ${JSON.stringify(extra)} in a command; a command is { "method", "params" }`)
    if (typeof method !== 'string') throw new errors.API_PARAMS('each command needs a "method"')
    return { result: await invoke(api, method, params) }
  } catch (err) {
    const coded = asCoded(err as FastifyError, 0)
    if (coded.code === INTERNAL) request.log.error({ err }, 'comet: api batch command failed')
    return { error: errorBody(coded).error }
  }
}

interface Coded { code: string, message: string, statusCode: number }

const INTERNAL = 'FST_ERR_COMET_INTERNAL'

/** Our coded errors as they are; Fastify's own (body parsing) under our codes; anything else as internal. */
function asCoded (err: FastifyError, bodyLimit: number): Coded {
  if (typeof err.code === 'string' && err.code.startsWith('FST_ERR_COMET_')) return { code: err.code, message: err.message, statusCode: err.statusCode ?? 500 }
  const status = err.statusCode ?? 500
  if (status === 413) return asCoded(new errors.API_BODY_TOO_LARGE(bodyLimit), bodyLimit)
  if (status >= 400 && status < 500) return { code: 'FST_ERR_COMET_API_PARAMS', message: `Invalid API request: ${err.message}`, statusCode: status }
  return { code: INTERNAL, message: 'internal error', statusCode: 500 }
}

function errorBody ({ code, message }: { code: string, message: string }): { error: { code: string, message: string } } {
  return { error: { code, message } }
}
