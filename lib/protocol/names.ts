// Names of the wire protocol, shared by the server and the browser client (lib/client imports this file:
// it stays free of Node and of dependencies).

/**
 * The wire protocol's name and version, negotiated as the WebSocket subprotocol. An incompatible change
 * gets a new name (`comet.v2`); a server that speaks several picks the newest the client offers.
 */
export const PROTOCOL = 'comet.v1'

/** User ids, event and channel names share one charset, safe in Redis keys and JSON without escaping. */
export const NAME = /^[A-Za-z0-9_-]{1,64}$/

/** The channel name private messages arrive on; no public channel may use it. */
export const PRIVATE_CHANNEL = 'msg'

/** `user_status_<id>`: the channel that reports whether user `<id>` is online. */
export const USER_STATUS = 'user_status_'

/** A user id as the protocol names it: a name, or a safe integer taken as its decimal string; null if neither. */
export function asUserId (value: unknown): string | null {
  const id = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value
  return typeof id === 'string' && NAME.test(id) ? id : null
}

export function isChannelName (value: unknown): value is string {
  return typeof value === 'string' && value !== PRIVATE_CHANNEL && NAME.test(value)
}
