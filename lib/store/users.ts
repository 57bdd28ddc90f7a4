// The users half of the store: credentials, devices, private messages and their offline queue, status.
import type { Once, Routed } from './bus.ts'

export interface SendResult {
  /** The message id: a decimal string, increasing per user. */
  id: string
  /** True when no device of the user was online: the message waits in the offline queue. */
  queued: boolean
}

export interface CatchUp {
  queued: Routed[]
  /** Whether `missed` is every message after `since`. */
  recovered: boolean
  missed: Routed[]
}

export type AttachResult =
  | {
    ok: true
    /** The offline queue, now taken. */
    queued: Routed[]
    dropped: number
    /** With `since`: whether `missed` is every message after it; null without `since`. */
    recovered: boolean | null
    missed: Routed[]
    /** The user's last id when the device attached: it is in sync up to here. */
    synced: number
  }
  | { ok: false, reason: 'revoked' | 'limit' }

/**
 * What a login proves, re-checked by `attach` against a racing `revokeAuth`: the hash's digest (it must
 * still be the registered one), or when the credential was issued (a token's `iat`, the upgrade hook's
 * time, in ms; 0 when unknown): refused if a revocation came after it.
 */
export type AuthProof = { digest: string } | { issuedAt: number }

/**
 * A user's presence. `online` is what `user_status_<id>` reports: the user has a device, or the last one left
 * less than the grace period ago. Each change of it is sent to the status channel once, by the store.
 */
export interface UserStatus {
  devices: number
  /** When the user was last seen (ms), or null. */
  seen: number | null
  online: boolean
  /** When the grace period ends and a sweep would send offline, or null. */
  due: number | null
}

/** Everything about users that instances share. */
export interface UserStore {
  setAuth (userId: string, digest: string, ttl: number | undefined): Promise<void>
  getAuth (userId: string): Promise<string | null>
  /**
   * Deletes the hash and the user's devices, and tells every instance to close the user's sockets; with
   * `revocationTtl` set, records the time so tokens issued before it are refused that long.
   */
  revokeAuth (userId: string): Promise<void>
  /**
   * Admits an authentication attempt from an address when its failures and the attempts in flight leave
   * room under `max`, in a window of `window` ms that starts with its first attempt (shared by every
   * instance). Resolves to whether it was admitted (then it is in flight), the failures counted, and the
   * ms left in the window.
   */
  authAttempt (address: string, max: number, window: number): Promise<[admitted: boolean, failures: number, left: number]>
  /** An admitted attempt ended: no longer in flight, and counted as a failure if it failed. Resolves to the failures and the ms left. */
  authSettle (address: string, failed: boolean): Promise<[failures: number, left: number]>
  /** When the user's last revocation was (ms), while it is remembered; null otherwise. */
  revokedAt (userId: string): Promise<number | null>
  /**
   * Deliver-or-queue as one atomic step: assigns the next id, routes `head + id + '"}'` to the instances
   * listening for the user and, when none is, appends it to the offline queue. With `once`, a repeat of its
   * key for this user is decided in that same step.
   */
  sendToUser (userId: string, head: string, once?: Once): Promise<SendResult>
  /**
   * sendToUser for each of `userIds` (distinct), every user decided atomically as there; resolves to their
   * results in order. Redis: one script call per batch of users of one Cluster slot.
   */
  sendToUsers (userIds: string[], head: string): Promise<SendResult[]>
  /** Puts back messages that reached this instance after the user's last local socket had closed. */
  requeue (userId: string, messages: Routed[]): Promise<void>
  /**
   * Records a device after the instance listens for the user: re-checks the proof (a revoke may have raced
   * the login), enforces maxDevices, and takes the offline queue, all at once; then routes the `synced`
   * control for the device behind every message sent before it.
   */
  attach (userId: string, device: string, proof: AuthProof, since: number | null): Promise<AttachResult>
  /** Removes a device; resolves to when the user goes offline unless a device comes back (a sweep's time), or null. */
  detach (userId: string, device: string): Promise<number | null>
  /** Takes the user's queue and the messages after `since`, for sockets that stayed open through a routing gap. */
  catchUp (userId: string, since: number): Promise<CatchUp>
  /** Heartbeat: keeps this instance's devices alive; devices not refreshed lapse after 3 heartbeats. */
  refresh (devices: Map<string, string[]>): Promise<void>
  /** The user's devices and status, after a sweep (lapsed devices removed, an ended grace period closed). */
  status (userId: string): Promise<UserStatus>
  /** For the admin page: the user's live devices and the length of their offline queue. */
  inspect (userId: string): Promise<{ devices: string[], queued: number }>
}
