/**
 * Why a `publish()` or `members()` promise was rejected.
 *
 * `code` is the server's error code (`bad_channel`, `unavailable`, …) or one of the client's own:
 * - `timeout`: no reply within `requestTimeout`;
 * - `disconnected`: the connection dropped after the request was sent, so it may or may not have been done;
 * - `closed`: `close()` was called, or the client cannot connect (`auth-failed`).
 */
export class CometClientError extends Error {
  readonly code: string

  constructor (code: string, message: string) {
    super(message)
    this.name = 'CometClientError'
    this.code = code
  }
}
