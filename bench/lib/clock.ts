// One clock for every process: wall-clock milliseconds with sub-millisecond resolution.
// performance.timeOrigin is the process start on the realtime clock, performance.now() is monotonic since
// then, so their sum is comparable across processes of one machine (to a few microseconds).
import { performance } from 'node:perf_hooks'

const origin = performance.timeOrigin

export function nowMs (): number {
  return origin + performance.now()
}
