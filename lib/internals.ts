// The one place that touches other libraries' private fields. Each touch says why it is worth it; each is
// covered by test/internals.test.ts, which fails when the library stops keeping the field, so an upgrade
// that changes it shows there rather than as a slow leak or a silent fallback.
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Cluster, Redis } from 'ioredis'
import type { WebSocket } from 'ws'

/**
 * ws: the TCP socket under a WebSocket, kept as `_socket` while open. A message's frame is built once
 * (lib/protocol/wire.ts) and written to each socket as is, instead of ws framing it again per socket; the
 * socket also tells how much is buffered for a slow reader.
 */
export function rawSocket (ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket
}

/**
 * Node's http: once the socket is upgraded, `_socket._httpMessage` still points at the response it was
 * assigned to, and @fastify/websocket's error listener closes over the request and reply. Detaching both
 * lets them be collected: a few KiB per idle connection. The Connection adds its own error listener.
 */
export function releaseUpgrade (socket: WebSocket): void {
  socket.removeAllListeners('error')
  const raw = (socket as unknown as { _socket?: Socket & { _httpMessage?: ServerResponse | null } })._socket
  // detachSocket also takes the response's close listener off the socket.
  if (raw?._httpMessage != null) raw._httpMessage.detachSocket(raw)
}

/**
 * ioredis: a live connection of a Cluster's sharded subscriber group (kept private). A shard's subscriber
 * that went deaf is replaced by closing it: the group opens a new one and subscribes it again.
 */
export function shardSubscriber (sub: Cluster, nodeKey: string): Redis | null {
  const group = (sub as unknown as { shardedSubscribers?: { shardedSubscribers?: Map<string, { getInstance?: () => Redis | null }> } }).shardedSubscribers
  return group?.shardedSubscribers?.get(nodeKey)?.getInstance?.() ?? null
}

/**
 * ioredis: a Cluster's slot-map refresh still in flight when it quits re-arms the `slotsRefreshInterval`
 * timer, which then runs for good and keeps the process from exiting. Once that refresh settles (at once
 * if none is in flight), the timer is cleared again with the Cluster's own (private) method.
 */
export function stopSlotRefresh (cluster: Cluster): void {
  cluster.refreshSlotsCache(() => { (cluster as unknown as { clearNodesRefreshInterval (): void }).clearNodesRefreshInterval() })
}
