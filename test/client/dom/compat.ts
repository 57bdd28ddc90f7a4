// Compiled with the DOM library only (npm run typecheck): the browser's own classes must fit the
// client's options, and the client must not need Node's types.
import { CometClient, type CometClientOptions } from '../../../lib/client/index.ts'

const options: CometClientOptions = {
  url: '/comet',
  userId: 42,
  hash: 'a-secret-of-16-chars',
  WebSocket,
  window,
  sharing: { BroadcastChannel, locks: navigator.locks },
  shareConnection: true
}
const comet = new CometClient(options)
const off: () => void = comet.subscribe<{ text: string }>('msg.chat', (m) => { console.log(m.data.text, m.id) })
off()
comet.on('status', (status) => {
  const s: 'connecting' | 'open' | 'closed' | 'auth-failed' = status
  console.log(s)
})
const id: Promise<string> = comet.publish('web_room', 'say', { text: 'hi' })
const members: Promise<string[]> = comet.members('track_room')
console.log(id, members)
// @ts-expect-error not a status event
comet.on('nope', () => {})
