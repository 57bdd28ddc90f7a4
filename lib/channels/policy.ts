import type { ChannelSettings, HistorySettings } from './options.ts'
import type { ChannelKind } from './types.ts'
import { USER_STATUS } from '../protocol/names.ts'

/** The kind a channel's prefix gives it. Names are already valid ([A-Za-z0-9_-]{1,64}). */
export function kindOf (channel: string): ChannelKind {
  if (channel.startsWith('web_')) return 'web'
  if (channel.startsWith('webauth_')) return 'webauth'
  if (channel.startsWith('track_')) return 'track'
  if (channel.startsWith(USER_STATUS) && channel.length > USER_STATUS.length) return 'user_status'
  if (channel.startsWith('private_')) return 'private'
  return 'public'
}

/** Whether clients may publish here: `web_*` anyone, `webauth_*` authorized users only, elsewhere no one. */
export function mayPublish (kind: ChannelKind, userId: string | null): boolean {
  return kind === 'web' || (kind === 'webauth' && userId !== null)
}

/**
 * The built-in part of the subscribe decision, before the app's `canSubscribe` hook:
 * 'deny', 'allow' (final), or 'ask' (the hook decides; allowed without one).
 */
export function subscribeRule (channel: string, kind: ChannelKind, userId: string | null, hasHook: boolean): 'deny' | 'allow' | 'ask' {
  if ((kind === 'track' || kind === 'private') && userId === null) return 'deny'
  // Without a hook a user may read only their own private channel. Only the exact name: user ids may
  // contain "_" and "-", so a prefix rule would let user "42" read user "42_x"'s channel.
  if (kind === 'private' && !hasHook) return channel === `private_${userId as string}` ? 'allow' : 'deny'
  return 'ask'
}

export function historyOf (settings: ChannelSettings, channel: string): HistorySettings | undefined {
  for (const { pattern, settings: history } of settings.history) if (pattern.test(channel)) return history
  return undefined
}
