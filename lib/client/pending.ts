import { CometClientError } from './errors.ts'
import type { RequestFrame, ServerFrame } from './types.ts'

/** A request waiting for its reply, rejected with `timeout` if none comes in time. */
export interface Pending {
  frame: RequestFrame
  resolve: (frame: ServerFrame) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
}

/** Makes a pending request; on timeout, `forget` removes it from wherever it waits, then it is rejected. */
export function pending (frame: RequestFrame, resolve: Pending['resolve'], reject: Pending['reject'], timeout: number,
  forget: (p: Pending) => void): Pending {
  const p: Pending = {
    frame,
    resolve,
    reject,
    timer: setTimeout(() => {
      forget(p)
      reject(new CometClientError('timeout', `no reply to ${frame.type} within ${timeout} ms`))
    }, timeout)
  }
  return p
}
