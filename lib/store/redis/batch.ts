/**
 * A script written for one call: its first `numberOfKeys` arguments are KEYS, the rest ARGV. The first
 * `shared` ARGV are the same for every call of a batch (settings, the clock): they travel once per batch,
 * taken from its first call.
 */
export interface Script { numberOfKeys: number, shared?: number, lua: string }

export type Arg = string | number | Buffer

/** Most calls in one EVALSHA: Redis runs nothing else meanwhile (a send takes about 10 µs in Redis). */
const MAX_BATCH = 64

/**
 * Every script runs for a batch of calls: the calls of one event-loop turn (per slot on a Cluster) go out
 * as one EVALSHA. The body stays written for one call; this wrapper gives it each call's KEYS and ARGV in
 * turn, under pcall. Wire layout (packCalls): KEYS holds numberOfKeys keys per call; ARGV the shared
 * arguments, then per call its argument count and arguments — except for a batch of one call, whose KEYS
 * and ARGV are the call's own (no copying: at low rates most batches hold one call). The reply holds one
 * reply per call, or an error for a call that failed (the others stand).
 */
export function batchedLua ({ numberOfKeys, shared = 0, lua }: Script): string {
  if (numberOfKeys === 0) throw new Error('a batched script needs a key: its key count tells one call from many')
  return `
local CALL_KEYS, CALL_ARGV = KEYS, ARGV
local KEYS, ARGV
local function one ()
${lua}
end
local function run ()
  local ok, reply = pcall(one)
  if ok then return reply or false end
  return { err = type(reply) == 'table' and reply.err or tostring(reply) }
end
if #CALL_KEYS == ${numberOfKeys} then
  KEYS, ARGV = CALL_KEYS, CALL_ARGV
  return { run() }
end
local out, a = {}, ${shared + 1}
for k = 0, #CALL_KEYS - 1, ${numberOfKeys} do
  KEYS, ARGV = {}, {}
  for i = 1, ${numberOfKeys} do KEYS[i] = CALL_KEYS[k + i] end
  for i = 1, ${shared} do ARGV[i] = CALL_ARGV[i] end
  local n = tonumber(CALL_ARGV[a])
  for i = 1, n do ARGV[${shared} + i] = CALL_ARGV[a + i] end
  a = a + n + 1
  out[#out + 1] = run()
end
return out
`
}

/** The arguments of one batched EVALSHA (after the SHA): number of keys, keys, ARGV as batchedLua reads it. */
export function packCalls ({ numberOfKeys, shared = 0 }: Script, calls: Arg[][]): Arg[] {
  if (calls.length === 1) return [numberOfKeys, ...calls[0]!]
  const args: Arg[] = [calls.length * numberOfKeys]
  for (const call of calls) for (let i = 0; i < numberOfKeys; i++) args.push(call[i]!)
  const own = numberOfKeys + shared
  for (let i = numberOfKeys; i < own; i++) args.push(calls[0]![i]!)
  for (const call of calls) {
    args.push(call.length - own)
    for (let i = own; i < call.length; i++) args.push(call[i]!)
  }
  return args
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
    // through every scavenge, so every send was promoted and died in the old generation (test/batch-gc).
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
