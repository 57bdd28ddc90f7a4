import type { Store } from '../store/types.ts'
import { errors } from '../errors.ts'
import type { MetricsRegistry, OperationSettings } from './options.ts'
import type { Recorder } from './metrics.ts'

type PromClient = typeof import('prom-client')
type Settings = NonNullable<OperationSettings['metrics']>

/** What the gauges read when scraped. */
export interface Gauges {
  connections (): { authenticating: number, ready: number }
  users (): number
  subscriptions (): number
  storeUp (): Promise<boolean>
}

/** Store calls that are timed, labelled `op` by their name. */
const STORE_OPS = ['setAuth', 'getAuth', 'revokeAuth', 'sendToUser', 'sendToUsers', 'requeue', 'listenUser', 'unlistenUser',
  'listenChannel', 'unlistenChannel', 'attach', 'detach', 'catchUp', 'refresh', 'maintain', 'status', 'ping', 'inspect',
  'report', 'reports'] as const satisfies ReadonlyArray<keyof Store>

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** One labelled series of a Durations histogram. */
class Series {
  readonly labels: Record<string, string>
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts = new Float64Array(BUCKETS.length + 1)
  sum = 0
  count = 0
  constructor (labels: Record<string, string>) { this.labels = labels }

  observe (seconds: number): void {
    let i = 0
    while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) i++
    this.counts[i]!++
    this.sum += seconds
    this.count++
  }
}

/**
 * A Prometheus histogram with one label whose series are resolved once, so an observation is a few
 * increments: prom-client's Histogram hashes its labels at every observation, which on the send path
 * cost more than the rest of the metrics together. Registered in a prom-client registry, which reads it
 * through get() as it reads its own metrics.
 */
class Durations {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #series: Series[] = []

  constructor (name: string, help: string) {
    this.name = name
    this.help = help
  }

  series (labels: Record<string, string>): Series {
    const series = new Series(labels)
    this.#series.push(series)
    return series
  }

  get (): { name: string, help: string, type: string, aggregator: string, values: Array<{ labels: Record<string, string | number>, value: number, metricName: string }> } {
    const values = []
    for (const series of this.#series) {
      let cumulative = 0
      for (let i = 0; i <= BUCKETS.length; i++) {
        cumulative += series.counts[i] as number
        values.push({ labels: { ...series.labels, le: i < BUCKETS.length ? BUCKETS[i] as number : '+Inf' }, value: cumulative, metricName: `${this.name}_bucket` })
      }
      values.push({ labels: series.labels, value: series.sum, metricName: `${this.name}_sum` })
      values.push({ labels: series.labels, value: series.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    for (const series of this.#series) {
      series.counts.fill(0)
      series.sum = 0
      series.count = 0
    }
  }
}

/** prom-client is an optional peer dependency: loaded only when metrics are asked for. */
export async function loadPromClient (specifier = 'prom-client'): Promise<PromClient> {
  try {
    const mod = await import(specifier) as PromClient & { default?: PromClient }
    return mod.default ?? mod
  } catch (err) {
    throw new errors.OPTIONS(`metrics need prom-client (an optional peer dependency): npm install prom-client (${(err as Error).message})`)
  }
}

/**
 * Our series, in the app's registry or one of ours. Counters and gauges are read from the Recorder and the
 * live state when scraped; the two histograms are observed as calls end.
 */
export class Prometheus {
  readonly registry: MetricsRegistry
  readonly #names: string[] = []
  readonly #storeDuration: Durations
  readonly #storeErrors
  readonly #send: Record<'user' | 'channel', Series>

  constructor (prom: PromClient, settings: Settings, recorder: Recorder, gauges: Gauges) {
    const registry = settings.registry ?? new prom.Registry()
    this.registry = registry
    const p = settings.prefix
    const registers = [registry as InstanceType<PromClient['Registry']>]
    for (const name of ['connections', 'users', 'subscriptions', 'messages_sent_total', 'messages_delivered_total',
      'messages_queued_total', 'queue_dropped_total', 'auth_total', 'disconnects_total', 'client_frames_total',
      'store_duration_seconds', 'store_errors_total', 'store_up', 'send_duration_seconds', 'webhook_given_up_total',
      'event_listener_given_up_total']) {
      if (registry.getSingleMetric(p + name) !== undefined) {
        throw new errors.OPTIONS(`metrics: the registry already has ${p + name}; give each registration its own metrics.prefix`)
      }
      this.#names.push(p + name)
    }
    // Each metric registers itself in `registers` as it is made.
    const counter = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): unknown =>
      // Counters are set from the recorder's totals when scraped (they only grow).
      new prom.Counter({
        name: p + name,
        help,
        labelNames,
        registers,
        collect () {
          this.reset()
          for (const [labels, value] of read()) this.inc(labels, value)
        }
      })
    const gauge = (name: string, help: string, labelNames: string[], collect: (g: InstanceType<PromClient['Gauge']>) => void | Promise<void>): unknown =>
      new prom.Gauge({ name: p + name, help, labelNames, registers, async collect () { await collect(this) } })
    const kinds = (counts: { user: number, channel: number }): Array<[Record<string, string>, number]> =>
      [[{ kind: 'user' }, counts.user], [{ kind: 'channel' }, counts.channel]]
    const labelled = (label: string, counts: Map<string, number>): Array<[Record<string, string>, number]> =>
      [...counts].map(([value, count]) => [{ [label]: value }, count])

    gauge('connections', 'Open WebSockets on this instance, by state', ['state'], (g) => {
      const { authenticating, ready } = gauges.connections()
      g.set({ state: 'authenticating' }, authenticating)
      g.set({ state: 'ready' }, ready)
    })
    gauge('users', 'Distinct users with a socket on this instance', [], (g) => g.set(gauges.users()))
    gauge('subscriptions', 'Channel subscriptions of the sockets on this instance', [], (g) => g.set(gauges.subscriptions()))
    gauge('store_up', 'Whether the store answers a ping within 1 s (1) or not (0)', [], async (g) => g.set(await gauges.storeUp() ? 1 : 0))
    counter('messages_sent_total', 'sendToUser (user) and publish (channel) calls made on this instance', ['kind'], () => kinds(recorder.sentCount))
    counter('messages_delivered_total', 'Message frames written to sockets on this instance', ['kind'], () => kinds(recorder.deliveredCount))
    counter('messages_queued_total', 'Messages sent from this instance that went to an offline queue', [], () => [[{}, recorder.queuedCount]])
    counter('queue_dropped_total', 'Queued messages dropped because the queue was full (seen when the user comes back here)', [], () => [[{}, recorder.droppedCount]])
    counter('auth_total', 'Authentications on this instance, by result', ['result'], () => labelled('result', recorder.authCount))
    counter('disconnects_total', 'Sockets closed on this instance, by close code', ['code'], () => labelled('code', recorder.disconnects))
    counter('client_frames_total', 'Frames received from clients, by type', ['type'], () => labelled('type', recorder.frames))
    counter('webhook_given_up_total', 'Server events whose webhook batch was given up after retrying for retryFor', [], () => [[{}, recorder.webhookGivenUpCount]])
    counter('event_listener_given_up_total', 'Server events given up on this instance after a listener threw on every attempt', [], () => [[{}, recorder.listenerGivenUpCount]])
    this.#storeErrors = new prom.Counter({ name: p + 'store_errors_total', help: 'Store calls that failed', registers })
    this.#storeDuration = new Durations(p + 'store_duration_seconds', 'Store calls, by operation')
    const sendDuration = new Durations(p + 'send_duration_seconds', 'sendToUser and publish calls, start to answer')
    this.#send = { user: sendDuration.series({ kind: 'user' }), channel: sendDuration.series({ kind: 'channel' }) }
    registry.registerMetric(this.#storeDuration)
    registry.registerMetric(sendDuration)
  }

  /**
   * The store, with each call timed and its failures counted (channel publishes as `publish`). A proxy,
   * so everything else (accessors, other methods) reaches the store itself, with its private fields.
   */
  timed<S extends Store> (store: S): S {
    const channels = this.#time(store.channels, ['publish'])
    return this.#time(store, STORE_OPS, new Map([['channels', channels]]))
  }

  #time<T extends object> (target: T, ops: ReadonlyArray<keyof T & string>, own = new Map<PropertyKey, unknown>()): T {
    const errors = this.#storeErrors
    for (const op of ops) {
      const call = (target[op] as (...args: unknown[]) => Promise<unknown>).bind(target)
      const series = this.#storeDuration.series({ op })
      own.set(op, (...args: unknown[]) => {
        const start = performance.now()
        return call(...args).then((value) => {
          series.observe((performance.now() - start) / 1000)
          return value
        }, (err: unknown) => {
          series.observe((performance.now() - start) / 1000)
          errors.inc()
          throw err
        })
      })
    }
    return new Proxy(target, {
      get (target, prop) {
        let value = own.get(prop)
        if (value !== undefined) return value
        value = Reflect.get(target, prop, target)
        if (typeof value !== 'function') return value
        const bound = (value as (...args: unknown[]) => unknown).bind(target)
        own.set(prop, bound)
        return bound
      },
      set (target, prop, value) { return Reflect.set(target, prop, value, target) }
    })
  }

  /** Records how long a send took, from `start` (performance.now()). */
  sent (kind: 'user' | 'channel', start: number): void {
    this.#send[kind].observe((performance.now() - start) / 1000)
  }

  /** Takes our series out of a registry that is not ours, so the app can register the plugin again. */
  close (): void {
    for (const name of this.#names) this.registry.removeSingleMetric(name)
  }
}
