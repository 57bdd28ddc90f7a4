import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Cluster } from 'ioredis'
import { eventsLua } from '../../events/lua.ts'
import { batchedLua, packCalls, runBatched, TickBatcher } from './batch.ts'
import type { Arg, CallShape } from './batch.ts'
import type { Client } from './client.ts'
import { slotOf } from './slots.ts'

/**
 * Lua scripts, declared once each: the files they run (under lua/) and the names of their KEYS and ARGV.
 * A call passes one object with those names; the builder puts them in place, and the script sees them as
 * named locals (a header it generates above the script's first file). Every script runs batched
 * (batch.ts), through ioredis' defineCommand (EVALSHA, EVAL when Redis lost it).
 */
export interface Script<Call, Reply> {
  keys: readonly string[]
  /** ARGV the same for every call of a batch (settings, the clock): they travel once per batch. */
  shared: readonly string[]
  argv: readonly string[]
  /** The name of a trailing list of ARGV (as many as the call has), or undefined. */
  list: string | undefined
  /** Pure Lua (local functions) under lua/lib/, defined once per batch; `events` is lib/events/lua.ts. */
  libs: readonly string[]
  /** Files run for each call, in order; the last returns its reply. */
  body: ReadonlyArray<string | URL>
  /** Replies as Buffers (frames), not strings. */
  buffers: boolean
  /** Never set: carries the call and reply types. */
  readonly types?: { call: Call, reply: Reply }
}

type Named<N extends string, T> = { [P in N]: T }

interface Spec<K extends string, S extends string, A extends string, L extends string> {
  keys: readonly K[]
  shared?: readonly S[]
  argv?: readonly A[]
  list?: L
  libs?: readonly string[]
  body: string | URL | ReadonlyArray<string | URL>
  buffers?: boolean
}

/**
 * Declares a script whose reply is `Reply`: `script<[string, number]>()({ keys: ['meta'], argv: ['now'], body: 'x' })`
 * is called as `run.x({ meta, now })`.
 */
export function script<Reply> () {
  return <const K extends string, const S extends string = never, const A extends string = never, const L extends string = never>(
    spec: Spec<K, S, A, L>
  ): Script<Named<K | S | A, Arg> & Named<L, Arg[]>, Reply> => ({
    keys: spec.keys,
    shared: spec.shared ?? [],
    argv: spec.argv ?? [],
    list: spec.list,
    libs: spec.libs ?? [],
    body: typeof spec.body === 'string' || spec.body instanceof URL ? [spec.body] : spec.body,
    buffers: spec.buffers ?? false
  })
}

type AnyScript = Script<any, any>

/** A loaded script: called with its named arguments; the calls of one event-loop turn share a batch. */
export interface Run<Call, Reply> {
  (call: Call): Promise<Reply>
  /**
   * Many calls at once, as batches of their own (per slot on a Cluster): their shared ARGV are taken from
   * the first call, so these must be the same for all of them (a bulk send's frame travels once a batch).
   */
  many (calls: Call[]): Promise<Reply[]>
}

/** The loaded scripts: one function per script, taking its named arguments. */
export type Scripts<T extends Record<string, AnyScript>> = {
  [N in keyof T]: T[N] extends Script<infer C, infer R> ? Run<C, R> : never
}

const LUA = new URL('./lua/', import.meta.url)
const files = new Map<string, string>()

/** A Lua file's text, read once per process. */
function lua (file: string | URL): string {
  const url = typeof file === 'string' ? new URL(`${file}.lua`, LUA) : file
  let text = files.get(url.href)
  if (text === undefined) files.set(url.href, (text = readFileSync(url, 'utf8')))
  return text
}

/**
 * What every script can rely on, defined once per batch. PUBLISH names the command that publishes to a
 * routing channel: SPUBLISH with sharded pub/sub.
 */
function prelude (libs: readonly string[], sharded: boolean): string {
  let out = `local PUBLISH = '${sharded ? 'SPUBLISH' : 'PUBLISH'}'\n`
  for (const lib of libs) {
    // The server events' functions, built with their partitions' hash tags.
    out += lib === 'events' ? eventsLua : lua(`lib/${lib}`)
    out += '\n'
  }
  return out
}

/**
 * The script's named locals, read where batch.ts says a call's arguments are: `local a, b = KEYS[K + 1],
 * KEYS[K + 2]`, the shared ARGV from the start, the call's own from `A + 1`, and a list to the call's `N`th.
 */
function header ({ keys, shared, argv, list }: AnyScript): string {
  const names = (list: readonly string[], at: (i: number) => string): string =>
    list.length === 0 ? '' : `local ${list.join(', ')} = ${list.map((_, i) => at(i + 1)).join(', ')}\n`
  let out = names(keys, (i) => `KEYS[K + ${i}]`) + names(shared, (i) => `ARGV[${i}]`) + names(argv, (i) => `ARGV[A + ${i}]`)
  if (list !== undefined) out += `local ${list} = {}\nfor i = A + ${argv.length + 1}, A + N do ${list}[#${list} + 1] = ARGV[i] end\n`
  return out
}

/**
 * Defines the scripts on the client, each behind a batcher. A command's name carries a digest of its Lua:
 * a client shared with another registration (sharded or not, another version) never runs the other's text.
 */
export function loadScripts<T extends Record<string, AnyScript>> (client: Client, scripts: T, sharded: boolean): Scripts<T> {
  const run: Record<string, Run<Record<string, Arg | Arg[]>, unknown>> = {}
  for (const [name, s] of Object.entries(scripts)) {
    const order = [...s.keys, ...s.shared, ...s.argv]
    const list = s.list
    const command = define(client, name, { keys: s.keys.length, shared: s.shared.length },
      prelude(s.libs, sharded), header(s) + s.body.map(lua).join('\n'), s.buffers)
    const args = (call: Record<string, Arg | Arg[]>): Arg[] => {
      const out = order.map((n) => call[n] as Arg)
      if (list !== undefined) for (const item of call[list] as Arg[]) out.push(item)
      return out
    }
    run[name] = Object.assign((call: Record<string, Arg | Arg[]>) => command.one(args(call)), {
      many: async (calls: Array<Record<string, Arg | Arg[]>>) => await command.many(calls.map(args))
    })
  }
  return run as Scripts<T>
}

interface Defined {
  /** One call, batched with the other calls of this turn. */
  one (call: Arg[]): Promise<unknown>
  /** Many calls, batched among themselves only. */
  many (calls: Arg[][]): Promise<unknown[]>
}

function define (client: Client, name: string, shape: CallShape, once: string, perCall: string, buffers: boolean): Defined {
  // Server events go to a partition on the same master, in another slot (lib/events/lua.ts).
  const text = (client instanceof Cluster ? '#!lua flags=allow-cross-slot-keys\n' : '') + batchedLua(shape, once, perCall)
  const command = `comet_${name}_${createHash('sha1').update(text).digest('hex').slice(0, 12)}`
  // ioredis flattens an array argument: a batch's arguments go as one array, never spread.
  const named = client as unknown as Record<string, (args: Arg[]) => Promise<unknown>>
  // A user's own client may already carry it from another registration of the plugin.
  if (typeof named[command] !== 'function') client.defineCommand(command, { lua: text })
  const direct = named[command + (buffers ? 'Buffer' : '')]!.bind(client)
  const cluster = client instanceof Cluster
  const send = cluster ? async (args: Arg[]) => await redirected(direct, args) : direct
  const batch = async (calls: Arg[][]): Promise<unknown[]> => await send(packCalls(shape, calls)) as unknown[]
  const groupOf = cluster ? (call: Arg[]) => slotOf(String(call[0])) : () => 0
  const turn = new TickBatcher<Arg[], unknown>(batch, groupOf)
  return {
    one: (call) => turn.add(call),
    many: async (calls) => await runBatched(calls, groupOf, batch)
  }
}

/** Replies that mean a slot is moving or changing hands: the script did not run, so it can run again. */
const REDIRECT = /^(TRYAGAIN|ASK|MOVED|CLUSTERDOWN) /

/**
 * ioredis follows these redirections for a command on its own, but not inside an auto-pipelined batch
 * whose other commands succeeded (a user's Cluster may have auto-pipelining on). A script is atomic and
 * Redis refuses it before it starts, so running it again is safe; bounded like every other command.
 */
async function redirected (command: (args: Arg[]) => Promise<unknown>, args: Arg[]): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await command(args)
    } catch (err) {
      if (attempt === 20 || !REDIRECT.test((err as Error).message)) throw err
      await new Promise((resolve) => setTimeout(resolve, 50 + 10 * attempt))
    }
  }
}
