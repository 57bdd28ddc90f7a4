export interface LatencySummary {
  count: number
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** Percentiles of a latency sample in ms (nearest-rank). Sorts the given array in place. */
export function summarize (sample: Float64Array): LatencySummary {
  const n = sample.length
  if (n === 0) return { count: 0, p50: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }
  sample.sort()
  let sum = 0
  for (let i = 0; i < n; i++) sum += sample[i]!
  const at = (q: number): number => sample[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!
  return { count: n, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: sample[n - 1]!, mean: sum / n }
}

export function ratio (ours: number | undefined, theirs: number | undefined): number {
  if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return NaN
  return ours / theirs
}

export function fmt (v: number | undefined | null, digits = 2): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return '–'
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(digits)
}
