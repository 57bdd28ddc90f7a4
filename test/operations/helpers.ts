import type { TestApp } from '../helpers/app.ts'

/** The base URL of an app's HTTP routes (its socket URL with http:). */
export function httpBase (started: TestApp): string {
  return started.url.replace(/^ws/, 'http')
}

/** One sample of a Prometheus text exposition, e.g. `comet_auth_total{result="ok"}`; 0 when absent. */
export function sample (text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}
