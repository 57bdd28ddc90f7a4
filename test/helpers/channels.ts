import { HASH } from './app.ts'
import { TestClient } from './client.ts'
import type { Frame } from './client.ts'

/** Opens a client, authenticates (anonymously when `userId` is null) and subscribes to `channels`. */
export async function member (url: string, userId: string | null, channels: string[] = []): Promise<TestClient> {
  const client = await TestClient.open(url)
  if (userId === null) {
    client.send({ type: 'auth' })
    await client.type('ready')
  } else {
    await client.auth(userId, HASH)
  }
  for (const channel of channels) await request(client, { type: 'subscribe', channel })
  return client
}

let refs = 0

/** Sends a frame with a fresh ref and resolves with the reply to it (of any type, errors included). */
export async function request (client: TestClient, frame: Record<string, unknown>): Promise<Frame> {
  const ref = `r${++refs}`
  client.send({ ...frame, ref })
  return await client.next((f) => f.ref === ref)
}

/** Frames of one type on one channel, in arrival order. */
export function events (client: TestClient, type: string, channel: string): Frame[] {
  return client.frames.filter((f) => f.type === type && f.channel === channel)
}
