import type { IncomingHttpHeaders } from 'node:http'
import { PROTOCOL } from './names.ts'

export { PROTOCOL }

/**
 * Settles the subprotocol before the upgrade: a client that offers `comet.v1` (among others) gets it, one
 * that offers none speaks it implicitly, one that offers only others is refused (false). The header is
 * narrowed to ours, so whichever WebSocket server answers the upgrade (ours, or the app's) selects it.
 */
export function negotiate (headers: IncomingHttpHeaders): boolean {
  const offered = headers['sec-websocket-protocol']
  if (offered === undefined) return true
  if (!offered.split(',').some((name) => name.trim() === PROTOCOL)) return false
  headers['sec-websocket-protocol'] = PROTOCOL
  return true
}
