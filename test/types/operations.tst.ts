import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import comet from '../../lib/index.ts'
import type { CometOptions, Health } from '../../lib/index.ts'

test('metrics, health and admin options', () => {
  expect<CometOptions>().type.toBeAssignableFrom({ metrics: true as const, health: true as const })
  expect<CometOptions>().type.toBeAssignableFrom({ metrics: { registry: new Registry(), prefix: 'push_' } })
  expect<CometOptions>().type.toBeAssignableFrom({ metrics: { endpoint: false as const } })
  expect<CometOptions>().type.toBeAssignableFrom({ admin: { authorize: async () => true } })
  expect<CometOptions>().type.toBeAssignableFrom({ admin: { authorize: (request: { headers: Record<string, unknown> }) => request.headers['x'] === 'y' } })
  expect<CometOptions>().type.not.toBeAssignableFrom({ metrics: { registry: 'default' } })
  expect<CometOptions>().type.not.toBeAssignableFrom({ admin: true })
  expect<CometOptions>().type.not.toBeAssignableFrom({ admin: {} })
  expect<CometOptions>().type.not.toBeAssignableFrom({ health: 'yes' })
})

test('app.comet.health()', async () => {
  const app = Fastify()
  await app.register(comet, { health: true })
  expect(app.comet.health()).type.toBe<Promise<Health>>()
  expect<Health['status']>().type.toBe<'ok' | 'unavailable'>()
  expect<Health['store']>().type.toBe<'memory' | 'redis' | 'cluster'>()
})
