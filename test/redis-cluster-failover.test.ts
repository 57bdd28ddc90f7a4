import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { HASH, startApp } from './helpers/app.ts'
import { deliveredOnce, eventually, TestClient } from './helpers/client.ts'
import { slotOf, startCluster } from './helpers/cluster.ts'

// Its own cluster: a failover leaves one master without a replica, which other tests should not inherit.
test('a master SIGKILLed during a message stream fails over to its replica: subscriptions come back by themselves, nobody loses a message', async (t) => {
  const cluster = await startCluster()
  const options = { redis: { cluster: cluster.startup }, heartbeatInterval: 200 }
  const a = await startApp(options)
  const b = await startApp(options)
  const clients: TestClient[] = []
  t.after(async () => {
    await Promise.all(clients.map(async (c) => await c.close()))
    await Promise.all([a.app.close(), b.app.close()])
    await cluster.stop()
  })

  // One user on every shard, each with a device on B that stays; the victim shard's user also has one on
  // A that leaves during the outage and resumes after it.
  const masters = cluster.masters()
  const ownerOf = (id: string): number => {
    const slot = slotOf(`{u:${id}}`)
    return masters.find((m) => m.slots.some(([lo, hi]) => slot >= lo && slot <= hi))?.port ?? 0
  }
  const users: string[] = []
  for (let n = 0; users.length < masters.length; n++) {
    if (!users.some((u) => ownerOf(u) === ownerOf(`f${n}`))) users.push(`f${n}`)
  }
  const [victim] = users as [string]
  const victimPort = ownerOf(victim)
  const stays = new Map<string, TestClient>()
  for (const user of users) {
    await a.app.comet.registerAuth(user, HASH)
    const client = await TestClient.open(b.url)
    await client.auth(user, HASH)
    stays.set(user, client)
    clients.push(client)
  }
  const leaves = await TestClient.open(a.url)
  clients.push(leaves)
  await leaves.auth(victim, HASH)

  const sent = new Map(users.map((u) => [u, [] as string[]]))
  const refused = new Map(users.map((u) => [u, 0]))
  const stream = { on: true }
  t.after(() => { stream.on = false })
  const sending = (async () => {
    for (let i = 0; stream.on; i++) {
      const user = users[i % users.length] as string
      // A send refused while the shard has no master is not accepted: the backend would retry it. (Its
      // reply may have died with the master after it ran, and replicated: deliveredOnce allows for that.)
      const result = await a.app.comet.sendToUser(user, 'n', i).catch(() => null)
      if (result === null) {
        refused.set(user, refused.get(user)! + 1)
        await sleep(50)
      } else {
        sent.get(user)?.push(result.id)
      }
      await sleep(2)
    }
  })()
  await eventually(() => leaves.messages().length >= 5, 'the stream flows')
  const since = leaves.messages().at(-1)?.id as string
  await leaves.close()

  await cluster.kill(victimPort)
  await eventually(() => !cluster.masters().some((m) => m.port === victimPort), 'a replica took over', 30_000)
  await cluster.settled(30_000)
  // Keep streaming past the failover until the victim's user gets messages from the new master again.
  const before = (sent.get(victim) ?? []).length
  await eventually(() => (sent.get(victim) ?? []).length >= before + 20, 'sends to the failed-over shard are accepted again', 20_000)
  stream.on = false
  await sending

  for (const [user, client] of stays) {
    const ids = sent.get(user) ?? []
    await eventually(() => client.messages().length >= ids.length, `${user}'s device that stayed got every accepted message`, 15_000)
    deliveredOnce(client.messages().map((m) => m.id), ids, refused.get(user)!, user)
    assert.equal(client.closeCode, null)
  }
  const back = await TestClient.open(a.url)
  clients.push(back)
  const ready = await back.auth(victim, HASH, { since })
  assert.equal(ready.recovered, true)
  const victimIds = sent.get(victim) ?? []
  const expected = victimIds.slice(victimIds.indexOf(since) + 1)
  await eventually(() => back.messages().length >= expected.length, 'the resumed device got everything after since')
  deliveredOnce(back.messages().map((m) => m.id), expected, refused.get(victim)!, 'the resumed device')

  // The subscriptions moved to the promoted replica by themselves: live delivery without any reconnect.
  const live = await a.app.comet.sendToUser(victim, 'n', 'live')
  await eventually(() => stays.get(victim)?.messages().some((m) => m.id === live.id) === true, 'live on the new master')
  t.diagnostic(`${[...refused.values()].reduce((n, k) => n + k, 0)} sends refused during the failover, ${[...sent.values()].reduce((n, ids) => n + ids.length, 0)} accepted`)
})
