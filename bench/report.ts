// Turns a results object of bench/run.ts into a Markdown report and an SVG plot of latency against rate.
// `node --import tsx bench/report.ts bench/results/bench-….json [out.svg]` re-renders a saved run.
import { readFile, writeFile } from 'node:fs/promises'
import { fmt, ratio } from './lib/stats.ts'

type R = any

const SYS = ['comet', 'sio'] as const
const ALL = ['comet', 'sio', 'bare'] as const
const NAME: Record<string, string> = { comet: 'fastify-comet', sio: 'Socket.IO + redis-adapter', bare: 'bare ws + PUBLISH (floor)' }

function row (cells: Array<string | number>): string {
  return '| ' + cells.join(' | ') + ' |'
}

function verdict (r: number, target: number, lowerIsBetter: boolean): string {
  if (!Number.isFinite(r)) return 'no data'
  return (lowerIsBetter ? r <= target : r >= target) ? '**met**' : 'missed'
}

function bytes (n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–'
  if (Math.abs(n) >= 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + ' MiB'
  if (Math.abs(n) >= 1024) return (n / 1024).toFixed(1) + ' KiB'
  return n.toFixed(0) + ' B'
}

function fixedAt (r: R, sys: string, rate: number): R | undefined {
  return r.main?.[sys]?.fixed?.find((s: R) => s.rate === rate)
}

export function renderMarkdown (r: R): string {
  const out: string[] = []
  const m = r.machine
  out.push(`Run of ${r.date} (${r.mode}), ${m.cpus} × ${m.cpu}, ${m.memGiB} GiB, Node ${m.node}, open-file limit ${m.fdLimit}; took ${fmt(r.durationS, 0)} s.`)
  out.push('')
  out.push('### Goals (issue 23; ratio against the system in the goal, same run)')
  out.push('')
  out.push(row(['what', 'fastify-comet', 'Socket.IO', 'the floor', 'ratio', 'goal', 'met?']))
  out.push(row(['---', '---:', '---:', '---:', '---:', '---:', '---']))
  const mc = r.main?.comet
  const ms = r.main?.sio
  const cpuRate = r.config.fixed.includes(4000) ? 4000 : r.config.fixed[r.config.fixed.length - 1]
  const rr = r.config.fixed.includes(2000) ? 2000 : r.config.fixed[0]
  const sc = r.scale?.comet
  const ss = r.scale?.sio
  const goal = (what: string, f: (s: string) => number | undefined, against: 'sio' | 'bare' | null, target: number, lowerIsBetter: boolean, format: (v: number | undefined) => string = fmt): void => {
    const [c, io, floor] = [f('comet'), f('sio'), f('bare')]
    if (c === undefined && io === undefined) return
    const q = against === null ? c : ratio(c, against === 'sio' ? io : floor)
    const name = against === null ? '' : against === 'sio' ? '× Socket.IO' : '× the floor'
    out.push(row([what, format(c), format(io), format(floor), against === null ? '' : fmt(q), `${lowerIsBetter ? '≤' : '≥'} ${against === null ? format(target) : target} ${name}`.trim(), verdict(q ?? NaN, target, lowerIsBetter)]))
  }
  goal('deliveries/s at saturation, zero loss', s => r.main?.[s]?.saturation?.deliveriesPerSec, 'bare', 0.9, false)
  goal(`server CPU per delivery at ${cpuRate} msg/s (µs)`, s => fixedAt(r, s, cpuRate)?.serverCpuUsPerDelivery, 'bare', 1.05, true)
  goal(`Redis CPU per message at ${rr} msg/s (µs)`, s => fixedAt(r, s, rr)?.redisPerMsg.cpuUs, 'sio', 1.3, true)
  goal('connect + auth on two instances (conn/s)', s => r.main?.[s]?.connectPerSec, 'bare', 1.0, false)
  const cc = (s: string): number | undefined => r.main?.[s]?.connectCpuUs
  if (cc('comet') !== undefined) out.push(row(['… the servers\' CPU per connect + auth (µs)', fmt(cc('comet')), fmt(cc('sio')), fmt(cc('bare')), fmt(ratio(cc('comet'), cc('bare'))), '(what bounds the rate)', '']))
  goal(`RSS per idle authenticated connection, ${fmt(sc?.connections ?? ss?.connections, 0)} on one instance`, s => r.scale?.[s]?.memory?.rssPerConn, null, 4096, true, bytes)
  const heap = (s: string): number | undefined => r.scale?.[s]?.memory?.heapPerConn
  if (heap('comet') !== undefined) out.push(row(['… heap per idle connection there (RSS moves with the allocator, the heap less)', bytes(heap('comet')), bytes(heap('sio')), bytes(heap('bare')), fmt(ratio(heap('comet'), heap('bare'))), '', '']))
  goal(`p99 latency at ${rr} msg/s (ms; issue 6)`, s => fixedAt(r, s, rr)?.latency.p99, 'sio', 0.5, true)
  const rt = mc?.roundTrips
  if (rt !== undefined) out.push(row(['Redis round trips per `sendToUser` (MONITOR)', fmt(rt.perMessage), '1 `PUBLISH`', '1 `PUBLISH`', '', '1', rt.perMessage <= 1.001 ? '**met**' : 'missed']))
  const bc = r.bulk?.comet
  const bs = r.bulk?.sio
  if (bc !== undefined || bs !== undefined) {
    const users = Number((bc ?? bs).users).toLocaleString('en-US')
    const each = bc?.each
    out.push(row([`one notification to ${users} users, until all delivered (ms): \`sendToUsers\` / \`io.to(rooms).emit\`; floor: a PUBLISH each`, fmt(bc?.bulk?.deliveredMs), fmt(bs?.bulk?.deliveredMs), fmt(r.bulk?.bare?.each?.deliveredMs), fmt(ratio(bc?.bulk?.deliveredMs, bs?.bulk?.deliveredMs)), `report; ${fmt(each?.deliveredMs)} ms with ${users} \`sendToUser\``, '']))
    out.push(row(['… its Redis CPU (ms)', fmt(bc?.bulk?.redisCpuMs), fmt(bs?.bulk?.redisCpuMs), fmt(r.bulk?.bare?.each?.redisCpuMs), fmt(ratio(bc?.bulk?.redisCpuMs, bs?.bulk?.redisCpuMs)), `report; ${fmt(each?.redisCpuMs)} ms with ${users} \`sendToUser\``, '']))
  }
  out.push('')

  out.push('### Everything measured')
  out.push('')
  out.push(row(['metric', 'fastify-comet', 'Socket.IO', 'ratio ours/theirs']))
  out.push(row(['---', '---:', '---:', '---:']))
  const both = (label: string, f: (x: R) => number | undefined, format: (v: number | undefined) => string = fmt): void => {
    const a = f('comet')
    const b = f('sio')
    if (a === undefined && b === undefined) return
    out.push(row([label, format(a), format(b), fmt(ratio(a, b))]))
  }
  both(`connect + auth rate, ${fmt(mc?.connections ?? ms?.connections, 0)} conns on 2 instances (conn/s)`, s => r.main?.[s]?.connectPerSec)
  both('connect + auth rate, one instance, scale run (conn/s)', s => r.scale?.[s]?.connectPerSec)
  both('connections held by one instance (scale run)', s => r.scale?.[s]?.heldByServer)
  both('deliveries/s at saturation, zero loss', s => r.main?.[s]?.saturation?.deliveriesPerSec)
  both('… offered msg/s at that step', s => r.main?.[s]?.saturation?.rate)
  both('… client process CPU share at that step (cores)', s => r.main?.[s]?.saturation?.clientCpuShare)
  both('… first failing offered msg/s', s => r.main?.[s]?.firstFail)
  for (const rate of r.config.fixed) {
    both(`p50 / p99 / p99.9 at ${rate} msg/s (ms)`, s => fixedAt(r, s, rate)?.latency.p50, () => '')
    out.pop()
    const cell = (s: string): string => { const x = fixedAt(r, s, rate); return x === undefined ? '–' : `${fmt(x.latency.p50)} / ${fmt(x.latency.p99)} / ${fmt(x.latency.p999)}` }
    out.push(row([`p50 / p99 / p99.9 latency at ${rate} msg/s (ms)`, cell('comet'), cell('sio'), fmt(ratio(fixedAt(r, 'comet', rate)?.latency.p99, fixedAt(r, 'sio', rate)?.latency.p99)) + ' (p99)']))
  }
  for (const rate of r.config.fixed) both(`server CPU per delivery at ${rate} msg/s (µs, both instances)`, s => fixedAt(r, s, rate)?.serverCpuUsPerDelivery)
  both(`server CPU per delivery at ${cpuRate} msg/s with the idle share taken out (µs)`, s => netCpu(r, s, cpuRate))
  both('server CPU per additional delivery: slope over the fixed rates (µs)', s => marginalCpu(r, s))
  both('servers\' idle CPU with all connections open (cores)', s => r.main?.[s]?.idleCores)
  both(`… of which instance A (sender) at ${cpuRate} msg/s (µs)`, s => { const x = fixedAt(r, s, cpuRate); return x === undefined ? undefined : x.serverCpuUs[0] / x.received })
  const threadShare = (s: string): string => {
    const x = fixedAt(r, s, cpuRate)
    if (x?.threadsMs === undefined) return '–'
    const total = Object.values(x.threadsMs as Record<string, number>).reduce((a, b) => a + b, 0)
    return Object.entries(x.threadsMs as Record<string, number>).filter(([, ms]) => ms > 0).sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => `${name} ${(ms / total * 100).toFixed(0)} %`).join(', ')
  }
  out.push(row([`server CPU by thread at ${cpuRate} msg/s (/proc, both instances)`, threadShare('comet'), threadShare('sio'), '']))
  both(`client process CPU at ${cpuRate} msg/s (cores)`, s => fixedAt(r, s, cpuRate)?.clientCpuShare)
  both('RSS per idle connection, main run (after GC)', s => r.main?.[s]?.memory?.rssPerConn, bytes)
  both('heap per idle connection, main run (after GC)', s => r.main?.[s]?.memory?.heapPerConn, bytes)
  both('RSS per idle connection, scale run (after GC)', s => r.scale?.[s]?.memory?.rssPerConn, bytes)
  both('heap per idle connection, scale run (after GC)', s => r.scale?.[s]?.memory?.heapPerConn, bytes)
  both('p99 latency at 1,000 msg/s with the scale run\'s connections (ms)', s => r.scale?.[s]?.delivery?.latency?.p99)
  both(`Redis commands per message at ${rr} msg/s`, s => fixedAt(r, s, rr)?.redisPerMsg.commands)
  both(`Redis bytes in per message at ${rr} msg/s`, s => fixedAt(r, s, rr)?.redisPerMsg.netIn)
  both(`Redis bytes out per message at ${rr} msg/s`, s => fixedAt(r, s, rr)?.redisPerMsg.netOut)
  both(`Redis CPU per message at ${rr} msg/s (µs)`, s => fixedAt(r, s, rr)?.redisPerMsg.cpuUs)
  const byCmd = (s: string): string => {
    const x = fixedAt(r, s, rr)
    if (x === undefined) return '–'
    return Object.entries(x.redis.byCommand as Record<string, number>).map(([k, v]) => `${k} ${(v / x.sent).toFixed(2)}`).join(', ')
  }
  out.push(row([`Redis commands per message by name at ${rr} msg/s`, byCmd('comet'), byCmd('sio'), '']))
  if (r.drain !== undefined) {
    const d = r.drain
    out.push(row([`offline queue drain (${d.users} users × ${d.perUser} queued, msgs/s)`, `${fmt(d.drainPerSec)} (${d.received}/${d.expected} delivered)`, 'no offline queue', '']))
    out.push(row(['offline queue fill (sendToUser to offline users, msgs/s)', fmt(d.fillPerSec), '–', '']))
  }
  out.push('')

  if ((r.instances?.comet?.length ?? 0) + (r.instances?.sio?.length ?? 0) > 0) {
    out.push(`### Redis work per message against instance count (${r.config.instPairs} users × 2 devices on neighbouring instances, ${r.config.instRate} msg/s from instance 1)`)
    out.push('')
    out.push(row(['instances', 'comet cmds/msg', 'comet bytes out/msg', 'comet Redis µs/msg', 'comet server µs/delivery', 'Socket.IO cmds/msg', 'Socket.IO bytes out/msg', 'Socket.IO Redis µs/msg', 'Socket.IO server µs/delivery']))
    out.push(row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']))
    for (const n of r.config.instances) {
      const a = r.instances.comet.find((x: R) => x.instances === n)
      const b = r.instances.sio.find((x: R) => x.instances === n)
      out.push(row([n, fmt(a?.redisPerMsg.commands), fmt(a?.redisPerMsg.netOut), fmt(a?.redisPerMsg.cpuUs), fmt(a?.serverCpuUsPerDelivery), fmt(b?.redisPerMsg.commands), fmt(b?.redisPerMsg.netOut), fmt(b?.redisPerMsg.cpuUs), fmt(b?.serverCpuUsPerDelivery)]))
    }
    out.push('')
  }

  for (const sys of SYS) {
    const prof = r.main?.[sys]?.profile
    if (prof === undefined) continue
    out.push(`### Where ${NAME[sys]}'s servers spend CPU at ${r.config.profileRate} msg/s (V8 sampling profile, self time)`)
    out.push('')
    for (const p of prof) {
      out.push(`${p.file.replace(/^.*\//, '')}: ${fmt(p.totalMs, 0)} ms busy; ` + p.areas.slice(0, 8).map(([a, ms]: [string, number]) => `${a} ${(ms / p.totalMs * 100).toFixed(0)} %`).join(', '))
      out.push('')
    }
  }

  if (r.main?.bare !== undefined) {
    out.push('### The floor: bare `ws` + one Redis channel per user, none of comet\'s features (same run)')
    out.push('')
    out.push(row(['metric', 'bare', 'fastify-comet', 'Socket.IO', 'bare / Socket.IO', 'comet / bare']))
    out.push(row(['---', '---:', '---:', '---:', '---:', '---:']))
    const tri = (label: string, f: (x: string) => number | undefined): void => {
      const [x, c, s] = [f('bare'), f('comet'), f('sio')]
      out.push(row([label, fmt(x), fmt(c), fmt(s), fmt(ratio(x, s)), fmt(ratio(c, x))]))
    }
    tri('deliveries/s at saturation, zero loss', s => r.main?.[s]?.saturation?.deliveriesPerSec)
    for (const rate of r.config.fixed) tri(`server CPU per delivery at ${rate} msg/s (µs)`, s => fixedAt(r, s, rate)?.serverCpuUsPerDelivery)
    tri('server CPU per additional delivery: slope over the fixed rates (µs)', s => marginalCpu(r, s))
    for (const rate of r.config.fixed) tri(`p99 latency at ${rate} msg/s (ms)`, s => fixedAt(r, s, rate)?.latency.p99)
    tri('RSS per idle connection, main run (bytes)', s => r.main?.[s]?.memory?.rssPerConn)
    tri('connect + auth rate (conn/s)', s => r.main?.[s]?.connectPerSec)
    tri(`Redis CPU per message at ${r.config.fixed[0]} msg/s (µs)`, s => fixedAt(r, s, r.config.fixed[0])?.redisPerMsg.cpuUs)
    out.push('')
  }

  for (const sys of ALL) {
    const h = r.main?.[sys]?.heap
    if (h === undefined) continue
    out.push(`### What one idle connection keeps on ${NAME[sys]}'s heap (instance A, heap snapshots before and after connecting)`)
    out.push('')
    out.push(`${fmt(h.perConnBytes, 0)} bytes per connection in all.`)
    out.push('')
    out.push(row(['constructor', 'objects per connection', 'bytes per connection']))
    out.push(row(['---', '---:', '---:']))
    for (const x of h.rows) out.push(row([x.name.replace(/\|/g, '\\|'), fmt(x.perConn), fmt(x.bytesPerConn, 0)]))
    out.push('')
  }

  out.push('### Every rate step')
  out.push('')
  out.push(row(['system', 'offered msg/s', 'deliveries/s', 'lost', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', 'sender lag ms', 'server µs/delivery', 'client cores', 'Redis cmds/msg', 'Redis µs/msg', 'longest event-loop stall A/B ms', 'load avg', 'stolen ms', 'keeps up']))
  out.push(row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---']))
  for (const s of ALL) {
    for (const x of allSteps(r, s)) {
      out.push(row([NAME[s], fmt(x.rate), fmt(x.deliveriesPerSec), x.lost, fmt(x.latency.p50), fmt(x.latency.p99), fmt(x.latency.p999), fmt(x.latency.max), fmt(x.maxLagMs), fmt(x.serverCpuUsPerDelivery), fmt(x.clientCpuShare), fmt(x.redisPerMsg.commands), fmt(x.redisPerMsg.cpuUs), x.eventLoopMaxMs === undefined ? '–' : x.eventLoopMaxMs.map((v: number) => fmt(v, 0)).join(' / '), fmt(x.loadAvg1), x.stealMs === undefined || x.stealMs === null ? '–' : fmt(x.stealMs, 0), x.discarded === true ? 'discarded (stolen)' : x.pass ? 'yes' : x.retried === true ? 'no (retry)' : 'no']))
    }
  }
  out.push('')
  out.push(`A step keeps up when nothing is lost, the sender never fell more than ${r.criteria.maxLagMs} ms behind its schedule, p50 ≤ ${r.criteria.maxP50Ms} ms and p99 ≤ ${r.criteria.maxP99Ms} ms.` +
    (r.criteria.maxStolenShare === undefined
      ? ''
      : ` "Stolen ms" is CPU time the hypervisor gave to other guests during the step (all cores, /proc/stat); a fixed-rate step that lost more than ${fmt(r.criteria.maxStolenShare * 100, 0)} % of the cores that way was run again (at most ${String(r.criteria.stolenRetries)} times) and the attempt with the least stolen time counts.`))
  return out.join('\n')
}

function netCpu (r: R, s: string, rate: number): number | undefined {
  const x = fixedAt(r, s, rate)
  const idle = r.main?.[s]?.idleCores
  if (x === undefined || idle === undefined || x.wallMs === undefined) return undefined
  const total = x.serverCpuUs.reduce((a: number, b: number) => a + b, 0)
  return (total - idle * x.wallMs * 1000) / x.received
}

/**
 * What one more delivery costs the servers: the least-squares slope of their CPU (µs/s) against
 * deliveries/s over the fixed-rate steps. The rest of a step's CPU per delivery is a share of what the
 * servers spend per event-loop turn and timer whatever a turn holds, which shrinks as the rate grows.
 */
function marginalCpu (r: R, s: string): number | undefined {
  const steps = (r.main?.[s]?.fixed ?? []).filter((x: R) => x.wallMs !== undefined)
  if (steps.length < 2) return undefined
  const pts = steps.map((x: R) => [x.received / x.wallMs * 1000, x.serverCpuUs.reduce((a: number, b: number) => a + b, 0) / x.wallMs * 1000])
  const mx = pts.reduce((a: number, p: number[]) => a + p[0]!, 0) / pts.length
  const my = pts.reduce((a: number, p: number[]) => a + p[1]!, 0) / pts.length
  const sxy = pts.reduce((a: number, p: number[]) => a + (p[0]! - mx) * (p[1]! - my), 0)
  const sxx = pts.reduce((a: number, p: number[]) => a + (p[0]! - mx) ** 2, 0)
  return sxx === 0 ? undefined : sxy / sxx
}

function allSteps (r: R, s: string): R[] {
  const m = r.main?.[s]
  if (m === undefined) return []
  return [...m.fixed, ...(m.discarded ?? []), ...m.ramp].sort((a: R, b: R) => a.rate - b.rate)
}

/** Grid values of a log axis: 1, 2 and 5 times each power of ten within [min, max], with their multiplier. */
function logTicks (min: number, max: number): Array<[number, number]> {
  const ticks: Array<[number, number]> = []
  for (let d = Math.log10(min); d <= Math.log10(max) + 1e-9; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, d)
      if (v >= min && v <= max) ticks.push([v, m])
    }
  }
  return ticks
}

export function renderSvg (r: R): string {
  const W = 860
  const H = 460
  const L = 70
  const RM = 240
  const T = 48
  const B = 60
  const pw = W - L - RM
  const ph = H - T - B
  const series: Array<{ label: string, color: string, dash: string, pts: Array<{ x: number, y: number, pass: boolean }> }> = []
  const colors: Record<string, string> = { comet: '#1f77b4', sio: '#d62728', bare: '#7f7f7f' }
  for (const s of ALL) {
    // One point per rate: a step that was run twice (retry) is drawn with its better attempt.
    const byRate = new Map<number, R>()
    for (const x of allSteps(r, s)) {
      const had = byRate.get(x.rate)
      if (had === undefined || (x.pass && !had.pass) || (x.pass === had.pass && x.latency.p99 < had.latency.p99)) byRate.set(x.rate, x)
    }
    const steps = [...byRate.values()].sort((a, b) => a.rate - b.rate)
    if (steps.length === 0) continue
    series.push({ label: `${NAME[s]} p50`, color: colors[s]!, dash: '', pts: steps.map(x => ({ x: x.rate, y: x.latency.p50, pass: x.pass })) })
    series.push({ label: `${NAME[s]} p99`, color: colors[s]!, dash: '6 4', pts: steps.map(x => ({ x: x.rate, y: x.latency.p99, pass: x.pass })) })
  }
  const xs = series.flatMap(s => s.pts.map(p => p.x))
  const ys = series.flatMap(s => s.pts.map(p => p.y)).filter(v => Number.isFinite(v) && v > 0)
  const xmin = Math.pow(10, Math.floor(Math.log10(Math.min(...xs, 1000))))
  const xtop = Math.max(...xs, 1000) * 1.05
  const xdec = Math.pow(10, Math.floor(Math.log10(xtop)))
  const xmax = [1, 2, 5, 10].map(m => m * xdec).find(v => v >= xtop)!
  const ymin = Math.pow(10, Math.floor(Math.log10(Math.min(...ys, 1))))
  const ymax = Math.pow(10, Math.ceil(Math.log10(Math.max(...ys, 10))))
  const X = (v: number): number => L + (Math.log10(v) - Math.log10(xmin)) / (Math.log10(xmax) - Math.log10(xmin)) * pw
  const Y = (v: number): number => T + ph - (Math.log10(Math.max(v, ymin)) - Math.log10(ymin)) / (Math.log10(ymax) - Math.log10(ymin)) * ph
  const e: string[] = []
  e.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  e.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  e.push(`<text x="${L + pw / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">Delivery latency against offered message rate (${r.machine.cpus} cores, ${r.date.slice(0, 10)})</text>`)
  e.push(`<text x="${L + pw / 2}" y="36" text-anchor="middle" font-size="11" fill="#555">fixed rates (${r.config.fixed.join(', ')} msg/s): ${r.config.fixedMs / 1000} s steps, each holding one heartbeat; ramp: ${r.config.rampMs / 1000} s steps</text>`)
  for (const [v] of logTicks(xmin, xmax)) {
    const x = X(v)
    e.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${T + ph}" stroke="#ddd"/>`)
    e.push(`<text x="${x}" y="${T + ph + 16}" text-anchor="middle">${v >= 1000 ? v / 1000 + 'k' : v}</text>`)
  }
  for (const [v, m] of logTicks(ymin, ymax)) {
    const y = Y(v)
    e.push(`<line x1="${L}" y1="${y}" x2="${L + pw}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`)
    e.push(`<text x="${L - 6}" y="${y + 4}" text-anchor="end">${v < 1 ? v.toFixed(Math.round(-Math.log10(v))) : v}</text>`)
  }
  e.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`)
  e.push(`<text x="${L + pw / 2}" y="${H - 20}" text-anchor="middle">offered messages/s (log); each goes to every device of a random user: 1.5 deliveries per message</text>`)
  e.push(`<text transform="translate(18 ${T + ph / 2}) rotate(-90)" text-anchor="middle">latency from intended send time, ms (log)</text>`)
  series.forEach((s, i) => {
    const d = s.pts.filter(p => Number.isFinite(p.y)).map((p, j) => `${j === 0 ? 'M' : 'L'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')
    e.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`)
    for (const p of s.pts) {
      if (!Number.isFinite(p.y)) continue
      e.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${p.pass ? s.color : 'white'}" stroke="${s.color}" stroke-width="1.5"/>`)
    }
    const ly = T + 10 + i * 20
    e.push(`<line x1="${L + pw + 12}" y1="${ly}" x2="${L + pw + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`)
    e.push(`<text x="${L + pw + 46}" y="${ly + 4}" font-size="11">${s.label}</text>`)
  })
  const ny = T + 10 + series.length * 20 + 10
  e.push(`<circle cx="${L + pw + 26}" cy="${ny}" r="3.5" fill="white" stroke="#333"/><text x="${L + pw + 46}" y="${ny + 4}" font-size="11">did not keep up</text>`)
  e.push('</svg>')
  return e.join('\n') + '\n'
}

export function checkSmoke (r: R): string[] {
  const problems: string[] = []
  for (const s of SYS) {
    const m = r.main?.[s]
    if (m === undefined) { problems.push(`${s}: main phase missing`); continue }
    if (m.connectFailed > 0) problems.push(`${s}: ${m.connectFailed} connections failed`)
    for (const x of m.fixed) {
      if (x.received === 0 || x.lost !== 0 || x.errors !== 0) problems.push(`${s}: ${x.rate} msg/s delivered ${x.received}/${x.expected}, ${x.errors} send errors`)
    }
    for (const x of r.instances?.[s] ?? []) {
      if (x.received === 0 || x.lost !== 0) problems.push(`${s}: ${x.instances} instances delivered ${x.received}/${x.expected}`)
    }
    const sc = r.scale?.[s]
    if (sc !== undefined && (sc.connections !== sc.target || sc.delivery.lost !== 0 || sc.delivery.received === 0)) problems.push(`${s}: scale run held ${sc.connections}/${sc.target}, delivered ${sc.delivery.received}/${sc.delivery.expected}`)
  }
  const d = r.drain
  if (d !== undefined && (d.received !== d.expected || d.queued !== d.expected)) problems.push(`comet: offline queue queued ${d.queued}, drained ${d.received} of ${d.expected}`)
  for (const [s, b] of Object.entries(r.bulk ?? {}) as Array<[string, R]>) {
    for (const mode of ['bulk', 'each']) {
      const x = b[mode]
      if (x === undefined) continue
      if (x.lost !== 0) problems.push(`${s}: notification (${mode}) lost ${x.lost} deliveries`)
      const offline = b.users - b.online
      if (s === 'comet' && x.rounds.some((y: R) => y.queued !== offline)) problems.push(`comet: notification (${mode}) queued ${x.rounds.map((y: R) => y.queued).join('/')} of ${offline} offline users`)
    }
  }
  return problems
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2]
  if (file === undefined) throw new Error('usage: report.ts results.json [out.svg]')
  const r = JSON.parse(await readFile(file, 'utf8'))
  process.stdout.write(renderMarkdown(r) + '\n')
  if (process.argv[3] !== undefined) await writeFile(process.argv[3], renderSvg(r))
}
