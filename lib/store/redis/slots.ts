/**
 * Redis Cluster hash slots, computed here so an instance can name a probe channel on every shard
 * without a round trip: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.
 */
export function slotOf (key: string): number {
  const open = key.indexOf('{')
  if (open !== -1) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  let crc = 0
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8
    for (let i = 0; i < 8; i++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}
