// A browser-only project (no Node types, DOM lib): the client alone, its events declared on the client.
import { CometClient } from 'fastify-comet/client'

declare module 'fastify-comet/client' {
  interface CometEvents {
    chat: { text: string }
  }
}

const comet = new CometClient({ url: '/comet', userId: '42', hash: 'a-secret-of-16-chars' })
comet.subscribe('web_room.chat', (m) => { document.title = m.data.text })
export async function say (): Promise<string> {
  // @ts-expect-error publish checks a declared event's data
  await comet.publish('web_room', 'chat', { text: 1 })
  return await comet.publish('web_room', 'chat', { text: 'hi' })
}
