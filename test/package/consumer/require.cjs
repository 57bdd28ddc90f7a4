// A CommonJS app requiring the packed package (require() of an ES module: Node >= 20.19).
const assert = require('node:assert/strict')
const Fastify = require('fastify')
const comet = require('fastify-comet')
const { CometClient } = require('fastify-comet/client')
const { CometEmitter } = require('fastify-comet/emitter')

async function main () {
  assert.equal(typeof comet.default, 'function')
  assert.equal(comet.comet, comet.default)
  assert.equal(typeof CometClient, 'function')
  assert.throws(() => new CometEmitter({}), { code: 'FST_ERR_COMET_OPTIONS' })
  const app = Fastify()
  await app.register(comet.default, { prefix: '/rt' })
  await app.comet.registerAuth('42', 'a-long-enough-secret-hash')
  const sent = await app.comet.sendToUser('42', 'invoice_paid', { invoice: 'A-17' })
  assert.equal(sent.queued, true)
  const bundle = await app.inject('/rt/comet/client.js')
  assert.equal(bundle.statusCode, 200)
  await app.close()
  console.log('required ok')
}
main().catch((err) => { console.error(err); process.exit(1) })
