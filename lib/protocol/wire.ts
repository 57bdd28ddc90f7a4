/**
 * A server's WebSocket text frame, built once and written as is to every socket that gets the message:
 * server frames are not masked (RFC 6455 §5.1), so the bytes are the same for every receiver. One write
 * of one buffer per socket, where `ws.send` builds a header per socket and writes header and payload as two.
 */
export function textFrame (payload: Buffer): Buffer {
  const n = payload.length
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + n)
  frame[0] = 0x81 // FIN, text
  if (head === 2) {
    frame[1] = n
  } else if (head === 4) {
    frame[1] = 126
    frame.writeUInt16BE(n, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2)
    frame.writeUInt32BE(n >>> 0, 6)
  }
  payload.copy(frame, head)
  return frame
}

/** The payload of a frame built by textFrame. */
export function payloadOf (frame: Buffer): Buffer {
  const len = frame[1]!
  return frame.subarray(len === 126 ? 4 : len === 127 ? 10 : 2)
}
