// Summarizes a V8 .cpuprofile (written by `npm run bench -- --profile`): self time by area and by function.
// node --import tsx bench/profile.ts bench/results/comet-A.cpuprofile [top]
import { readFile } from 'node:fs/promises'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** Which part of the stack a function belongs to, read from its file. */
export function area (url: string, fn: string): string {
  if (url === '') {
    if (fn === '(garbage collector)') return 'GC'
    if (fn === '(idle)' || fn === '(program)') return fn
    return 'native/V8 (' + (fn || 'anonymous') + ')'
  }
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m !== null) return m[1]!
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  const lib = /\/lib\/(.+)$/.exec(url)
  if (lib !== null && !url.includes('node_modules')) return 'fastify-comet lib/' + lib[1]
  if (url.includes('/bench/')) return 'bench harness'
  return url
}

export async function summarizeProfile (file: string, top = 25): Promise<{ totalMs: number, areas: Array<[string, number]>, functions: Array<[string, number]> }> {
  const p = JSON.parse(await readFile(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt)
  }
  const areas = new Map<string, number>()
  const fns = new Map<string, number>()
  let total = 0
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const { functionName, url, lineNumber } = n.callFrame
    if (functionName === '(idle)') continue
    total += us
    const a = area(url, functionName)
    areas.set(a, (areas.get(a) ?? 0) + us)
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(lib|bench)\//, '$1/')}:${lineNumber + 1}`
    fns.set(key, (fns.get(key) ?? 0) + us)
  }
  const sort = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / 1000])
  return { totalMs: total / 1000, areas: sort(areas), functions: sort(fns).slice(0, top) }
}

export function renderProfile (name: string, s: Awaited<ReturnType<typeof summarizeProfile>>): string {
  const out = [`#### ${name}: ${s.totalMs.toFixed(0)} ms busy (self time, idle excluded)`, '', '| area | ms | share |', '| --- | ---: | ---: |']
  for (const [a, ms] of s.areas.slice(0, 15)) out.push(`| ${a} | ${ms.toFixed(0)} | ${(ms / s.totalMs * 100).toFixed(1)} % |`)
  out.push('', '| function | ms | share |', '| --- | ---: | ---: |')
  for (const [f, ms] of s.functions) out.push(`| \`${f}\` | ${ms.toFixed(0)} | ${(ms / s.totalMs * 100).toFixed(1)} % |`)
  return out.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: profile.ts file.cpuprofile [top]')
  process.stdout.write(renderProfile(file, await summarizeProfile(file, Number(process.argv[3] ?? 25))) + '\n')
}
