import assert from 'node:assert/strict'
import { test } from 'node:test'
import { backoffDelay } from '../../lib/client/backoff.ts'
import { parseTopic, privateId } from '../../lib/client/topics.ts'

test('topics: a channel, optionally narrowed to one event after the dot', () => {
  assert.deepEqual(parseTopic('msg'), { channel: 'msg', event: null })
  assert.deepEqual(parseTopic('msg.event1'), { channel: 'msg', event: 'event1' })
  assert.deepEqual(parseTopic('news'), { channel: 'news', event: null })
  assert.deepEqual(parseTopic('news.update'), { channel: 'news', event: 'update' })
  for (const bad of ['', '.x', 'news.', 'news.a.b', 'a b', 'x'.repeat(65), 'news.é']) {
    assert.throws(() => parseTopic(bad), TypeError, bad)
  }
})

test('private ids compare as numbers, and only plain decimals below 2^53 are ids', () => {
  assert.equal(privateId('1764363600000001'), 1764363600000001)
  assert.ok((privateId('1000') as number) > (privateId('999') as number))
  assert.equal(privateId('9007199254740993'), undefined)
  assert.equal(privateId('12a'), undefined)
  assert.equal(privateId('-1'), undefined)
  assert.equal(privateId(12), undefined)
})

test('backoff: full jitter below a ceiling that doubles per attempt and stops at the cap', () => {
  const top = (): number => 0.999999
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, 1000, 30_000, top)),
    [999, 1999, 3999, 7999, 15_999, 29_999, 29_999])
  assert.equal(backoffDelay(1000, 1000, 30_000, top), 29_999)
  assert.equal(backoffDelay(3, 1000, 30_000, () => 0), 0)
  assert.equal(backoffDelay(3, 1000, 30_000, () => 0.5), 4000)
})

test('nothing from the server is evaluated: no eval, Function, dynamic import or HTML sinks in the client or the demo page', async () => {
  const { readdir, readFile } = await import('node:fs/promises')
  const dir = new URL('../../lib/client/', import.meta.url)
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts')).map((f) => new URL(f, dir))
  files.push(new URL('../../examples/chat/public/chat.js', import.meta.url))
  for (const file of files) {
    // Comments may mention what the code must not do.
    const code = (await readFile(file, 'utf8')).replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
    for (const sink of [/\beval\s*\(/, /\bFunction\s*\(/, /\bimport\s*\(/, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, /set(Timeout|Interval)\s*\(\s*['"`]/]) {
      assert.doesNotMatch(code, sink, `${file.pathname} must not use ${sink}`)
    }
  }
})
