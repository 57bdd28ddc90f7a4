export type Arg = string | number | Buffer

/** How a script's arguments travel: its key count, and how many ARGV are the same for every call of a batch. */
export interface CallShape { keys: number, shared: number }

/** Most calls in one EVALSHA: Redis runs nothing else meanwhile. */
const MAX_BATCH = 64

/**
 * Every script runs for a batch of calls: the calls of one event-loop turn (per slot on a Cluster) go out
 * as one EVALSHA. `once` (functions, settings) runs once per batch; `perCall` is written for one call and
 * runs for each under pcall, reading its KEYS from `K + 1` and its own ARGV (`N` of them) from `A + 1` on
 * (script.ts names them), so no call's arguments are copied. Wire layout (packCalls): KEYS holds `keys`
 * keys per call; ARGV the shared arguments, then per call its argument count and arguments — except for a
 * batch of one call, whose KEYS and ARGV are the call's own (at low rates most batches hold one call).
 * The reply holds one reply per call, or an error for a call that failed (the others stand).
 */
export function batchedLua ({ keys, shared }: CallShape, once: string, perCall: string): string {
  if (keys === 0) throw new Error('a batched script needs a key: its key count tells one call from many')
  return `${once}
local function one (K, A, N)
${perCall}
end
local function run (k, a, n)
  local ok, reply = pcall(one, k, a, n)
  if ok then return reply or false end
  return { err = type(reply) == 'table' and reply.err or tostring(reply) }
end
if #KEYS == ${keys} then return { run(0, ${shared}, #ARGV - ${shared}) } end
local out, a = {}, ${shared + 1}
for k = 0, #KEYS - 1, ${keys} do
  local n = tonumber(ARGV[a])
  out[#out + 1] = run(k, a, n)
  a = a + n + 1
end
return out
`
}

/** The arguments of one batched EVALSHA (after the SHA): number of keys, keys, ARGV as batchedLua reads it. */
export function packCalls ({ keys, shared }: CallShape, calls: Arg[][]): Arg[] {
  if (calls.length === 1) return [keys, ...calls[0]!]
  const args: Arg[] = [calls.length * keys]
  for (const call of calls) for (let i = 0; i < keys; i++) args.push(call[i]!)
  const own = keys + shared
  for (let i = keys; i < own; i++) args.push(calls[0]![i]!)
  for (const call of calls) {
    args.push(call.length - own)
    for (let i = own; i < call.length; i++) args.push(call[i]!)
  }
  return args
}

/**
 * Runs a list of items as TickBatcher runs a turn's (one command per group, at most MAX_BATCH items each),
 * without a promise per item. Resolves to their results in order; rejects with the first item's Error.
 */
export async function runBatched<T, R> (items: T[], groupOf: (item: T) => number, run: (items: T[]) => Promise<Array<R | Error>>): Promise<R[]> {
  const groups = new Map<number, number[]>()
  for (let i = 0; i < items.length; i++) {
    const group = groupOf(items[i]!)
    let indexes = groups.get(group)
    if (indexes === undefined) groups.set(group, (indexes = []))
    indexes.push(i)
  }
  const out = new Array<R>(items.length)
  const runs: Array<Promise<void>> = []
  for (const indexes of groups.values()) {
    for (let i = 0; i < indexes.length; i += MAX_BATCH) {
      const chunk = indexes.slice(i, i + MAX_BATCH)
      runs.push(run(chunk.map((k) => items[k]!)).then((results) => {
        for (let j = 0; j < chunk.length; j++) {
          const result = results[j]
          if (result instanceof Error) throw result
          out[chunk[j]!] = result as R
        }
      }))
    }
  }
  await Promise.all(runs)
  return out
}

interface Pending<T, R> {
  item: T
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

/**
 * Gathers the calls made during one turn of the event loop and runs them as few commands: one per group
 * (a Redis Cluster slot; everything on a single Redis), at most MAX_BATCH items each. Per call this saves
 * ioredis' command object, promise, timer, write and reply parsing, and Redis' script dispatch; under
 * load a turn holds many sends. `run` answers each item with its result or an Error (that item is
 * rejected); a run that fails rejects all its items.
 */
export class TickBatcher<T, R> {
  #groups = new Map<number, Array<Pending<T, R>>>()
  #run: (items: T[]) => Promise<Array<R | Error>>
  #groupOf: (item: T) => number

  constructor (run: (items: T[]) => Promise<Array<R | Error>>, groupOf: (item: T) => number) {
    this.#run = run
    this.#groupOf = groupOf
  }

  add (item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      // setImmediate, not nextTick: the calls of every callback of this I/O phase join the same command.
      if (this.#groups.size === 0) setImmediate(() => this.#flush())
      const group = this.#groupOf(item)
      let pending = this.#groups.get(group)
      if (pending === undefined) this.#groups.set(group, (pending = []))
      pending.push({ item, resolve, reject })
    })
  }

  #flush (): void {
    // A new Map, not clear(): a cleared Map's table points to the next one, and once the long-lived Map's
    // table is old V8 allocates the next ones old too; each old table then keeps its turn's calls alive
    // through every scavenge, so the calls would be promoted and die in the old generation (test/batch-gc).
    const groups = this.#groups
    this.#groups = new Map()
    for (const pending of groups.values()) {
      for (let i = 0; i < pending.length; i += MAX_BATCH) this.#runChunk(pending.slice(i, i + MAX_BATCH))
    }
  }

  #runChunk (chunk: Array<Pending<T, R>>): void {
    this.#run(chunk.map((p) => p.item)).then(
      (results) => {
        for (let i = 0; i < chunk.length; i++) {
          const result = results[i]
          if (result instanceof Error) chunk[i]!.reject(result)
          else chunk[i]!.resolve(result as R)
        }
      },
      (err: unknown) => { for (const p of chunk) p.reject(err) }
    )
  }
}
