import { expect, test } from 'tstyche'
import type { FastifyRequest } from 'fastify'
import type { Claims, CometOptions, SubscribeContext } from '../../lib/index.ts'
import type { CometClientOptions } from '../../lib/client/index.ts'

test('authenticate and jwt options', () => {
  expect<CometOptions>().type.toBeAssignableFrom({ authenticate: async (request: FastifyRequest) => request.headers['x-user'] === undefined ? null : 'u1' })
  expect<CometOptions>().type.toBeAssignableFrom({ authenticate: () => 42 })
  expect<CometOptions>().type.not.toBeAssignableFrom({ authenticate: async () => ({ id: 1 }) })
  expect<CometOptions>().type.toBeAssignableFrom({ jwt: { secret: 'x', algorithms: ['HS256'], issuer: 'i', audience: ['a', 'b'], clockTolerance: 5, revocationTtl: 3_600_000 } })
  expect<CometOptions>().type.toBeAssignableFrom({ jwt: { key: async (header: Record<string, unknown>) => String(header['kid']) } })
  expect<CometOptions>().type.not.toBeAssignableFrom({ jwt: { secret: 'x', clockTolerance: '5s' } })
})

test('hooks receive the verified claims', () => {
  expect<SubscribeContext['claims']>().type.toBe<Claims | null>()
})

test('the client takes a token or a hash, as a string or a function', () => {
  expect<CometClientOptions>().type.toBeAssignableFrom({ url: '/comet', token: async () => 'jwt' })
  expect<CometClientOptions>().type.toBeAssignableFrom({ url: '/comet', token: 'jwt' })
  expect<CometClientOptions>().type.toBeAssignableFrom({ url: '/comet', userId: 1, hash: () => 'h' })
  expect<CometClientOptions>().type.not.toBeAssignableFrom({ url: '/comet', token: 5 })
})
