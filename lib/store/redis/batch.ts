interface Pending<T, R> {
  item: T
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

/**
 * Gathers the calls made during one turn of the event loop and runs them as few commands: one per group
 * (a Redis Cluster slot; everything on a single Redis), at most `max` items each. Per call this saves
 * ioredis' command object, promise, timer, write and reply parsing, and Redis' script dispatch; under
 * load a turn holds many sends. `run` answers each item with its result or an Error (that item is
 * rejected); a run that fails rejects all its items.
 */
export class TickBatcher<T, R> {
  #groups = new Map<number, Array<Pending<T, R>>>()
  #run: (items: T[]) => Promise<Array<R | Error>>
  #groupOf: (item: T) => number
  #max: number

  constructor (run: (items: T[]) => Promise<Array<R | Error>>, groupOf: (item: T) => number, max: number) {
    this.#run = run
    this.#groupOf = groupOf
    this.#max = max
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
    const groups = [...this.#groups.values()]
    this.#groups.clear()
    for (const pending of groups) {
      for (let i = 0; i < pending.length; i += this.#max) this.#runChunk(pending.slice(i, i + this.#max))
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
