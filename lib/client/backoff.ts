/**
 * Exponential backoff with full jitter: a random delay in `[0, min(maxDelay, baseDelay * 2 ** attempt))`.
 * Spreading reconnects over the whole window keeps a server restart from being met by every client at once.
 */
export function backoffDelay (attempt: number, baseDelay: number, maxDelay: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelay, baseDelay * 2 ** Math.min(attempt, 30))
  return Math.floor(random() * ceiling)
}
