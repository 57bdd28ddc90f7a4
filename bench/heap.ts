// What one idle connection keeps on the heap: the difference of two V8 heap snapshots (before and after
// connecting), by constructor, divided by the connections added.
// node --import tsx bench/heap.ts before.heapsnapshot after.heapsnapshot connections [top]
import { readFile } from 'node:fs/promises'

interface Snapshot {
  snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
  nodes: number[]
  strings: string[]
}

async function byConstructor (file: string): Promise<Map<string, { count: number, bytes: number }>> {
  const s = JSON.parse(await readFile(file, 'utf8')) as Snapshot
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const width = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const out = new Map<string, { count: number, bytes: number }>()
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!
    const name = s.strings[s.nodes[i + iName]!]!
    const key = type === 'object' ? name : type === 'closure' ? `closure ${name || '(anonymous)'}` : `(${type})`
    const e = out.get(key) ?? { count: 0, bytes: 0 }
    e.count++
    e.bytes += s.nodes[i + iSize]!
    out.set(key, e)
  }
  return out
}

export async function heapDiff (before: string, after: string, conns: number, top = 20): Promise<{ perConnBytes: number, rows: Array<{ name: string, perConn: number, bytesPerConn: number }> }> {
  const [a, b] = [await byConstructor(before), await byConstructor(after)]
  const rows = []
  let total = 0
  for (const [name, e] of b) {
    const was = a.get(name) ?? { count: 0, bytes: 0 }
    const bytes = e.bytes - was.bytes
    total += bytes
    rows.push({ name, perConn: (e.count - was.count) / conns, bytesPerConn: bytes / conns })
  }
  rows.sort((x, y) => y.bytesPerConn - x.bytesPerConn)
  return { perConnBytes: total / conns, rows: rows.slice(0, top) }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [before, after, conns, top] = process.argv.slice(2)
  if (before === undefined || after === undefined || conns === undefined) throw new Error('usage: heap.ts before after connections [top]')
  const d = await heapDiff(before, after, Number(conns), Number(top ?? 20))
  process.stdout.write(`${d.perConnBytes.toFixed(0)} bytes of heap per connection\n\n| constructor | objects per connection | bytes per connection |\n| --- | ---: | ---: |\n`)
  for (const r of d.rows) process.stdout.write(`| ${r.name} | ${r.perConn.toFixed(2)} | ${r.bytesPerConn.toFixed(0)} |\n`)
}
