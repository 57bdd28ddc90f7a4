/** WebSocket close codes the server uses; documented in docs/protocol.md. */
export const CLOSE = {
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  AUTH_FAILED: 4401,
  AUTH_TIMEOUT: 4408,
  REPLACED: 4409,
  TOO_SLOW: 4413,
  DEVICE_LIMIT: 4429,
  /** The same code as the upgrade's HTTP 429: the address failed to authenticate too often lately. */
  AUTH_LIMIT: 4429
} as const
