import type { Claims } from '../auth/jwt.ts'
import type { ChannelMember } from '../routing/hub.ts'

/** What channels need of a subscribed socket (lib/connections/connection.ts is one). */
export interface Subscriber extends ChannelMember {
  /** The verified token's claims, for the app's hooks; null unless the socket logged in with a token. */
  readonly claims: Claims | null
  readonly closed: boolean
}
