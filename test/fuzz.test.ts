import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FrameError, parseFrame } from '../lib/protocol/frames.ts'
import { appOn } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'

const TYPES = ['auth', 'subscribe', 'unsubscribe', 'ping', 'publish', 'message', '', 'AUTH']
const value = fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }))
/** Objects shaped like frames, with every field sometimes right and sometimes wrong. */
const frameLike = fc.record({
  type: fc.oneof(fc.constantFrom(...TYPES), value),
  channel: fc.oneof(fc.constantFrom('news', 'msg', 'a-b_c', 'x'.repeat(65), 'bad name'), value),
  userId: fc.oneof(fc.constantFrom('fz', '42', 'bad id'), value),
  hash: fc.oneof(fc.constant(HASH), value),
  since: fc.oneof(fc.constantFrom('1', '99999999999999999', 'abc'), value),
  ref: fc.oneof(fc.integer(), fc.string({ maxLength: 70 }), value)
}, { requiredKeys: [] })
const text = fc.oneof(fc.string({ maxLength: 200 }), frameLike.map((f) => JSON.stringify(f)), fc.json({ maxDepth: 3 }))

test('the frame parser returns a valid frame or a coded FrameError, for any input (20,000 cases)', () => {
  fc.assert(fc.property(text, (input) => {
    let frame
    try {
      frame = parseFrame(input)
    } catch (err) {
      assert.ok(err instanceof FrameError, `not a FrameError: ${String(err)}`)
      assert.match(err.code, /^(bad_json|bad_frame|bad_channel|unknown_type)$/)
      return
    }
    assert.ok(['auth', 'subscribe', 'unsubscribe', 'ping'].includes(frame.type))
  }), { numRuns: 20_000 })
})

test('random sequences of client frames: one answer per frame, in order; the server and other clients carry on (400 sequences)', async (t) => {
  // Generated auth frames fail often; the per-address limit is tested on its own (security.test.ts).
  const { app, url } = await appOn(t, 'memory', { maxSubscriptions: 4, authRateLimit: false })
  await app.comet.registerAuth('fz', HASH)
  await app.comet.registerAuth('bystander', HASH)
  const bystander = await TestClient.open(url)
  t.after(() => bystander.close())
  await bystander.auth('bystander', HASH)
  let frames = 0
  let authFailures = 0

  const sequence = fc.array(fc.oneof(text.map((s) => ({ data: s, binary: false })), text.map((s) => ({ data: s, binary: true }))), { minLength: 1, maxLength: 25 })
  await fc.assert(fc.asyncProperty(sequence, async (sent) => {
    frames += sent.length
    const client = await TestClient.open(url)
    try {
      for (const { data, binary } of sent) client.ws.send(Buffer.from(data), { binary })
      client.send({ type: 'ping', ref: 'end' })
      const ended = await Promise.race([client.next((f) => f.ref === 'end').then(() => 'answered'), client.closed])
      const answers = client.frames.filter((f) => f.type !== 'message').length
      if (ended === 'answered') {
        // Private messages are not answers; everything else is, exactly one per frame.
        assert.equal(answers, sent.length + 1)
      } else {
        // The one way the server may end a sequence: credentials that are well-formed but wrong.
        assert.equal(ended, 4401)
        assert.ok(answers <= sent.length)
        authFailures++
      }
    } finally {
      client.ws.terminate()
    }
  }), { numRuns: 400 })

  assert.ok(frames > 2000, `${frames} frames sent`)
  assert.ok(authFailures < 40, `${authFailures} sequences ended by a failed auth`)
  const { id } = await app.comet.sendToUser('bystander', 'e', 'still fine')
  await eventually(() => bystander.messages().some((m) => m.id === id), 'the bystander still gets its messages')
})
