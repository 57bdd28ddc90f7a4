/**
 * The app's events and the data each carries, declared once for the server and the client:
 *
 * ```ts
 * declare module 'fastify-comet' {
 *   interface CometEvents { invoice_paid: { invoice: string } }
 * }
 * ```
 *
 * `sendToUser(id, 'invoice_paid', data)` and `publish` then check `data`, and the client's
 * `subscribe('msg.invoice_paid', (m) => m.data.invoice)` knows its type. An event name means the same
 * data wherever it is sent; events not declared carry `unknown`. (A client-only project declares it in
 * `'fastify-comet/client'`: it is the same interface.)
 */
export interface CometEvents {}

/** The data of event `E`: its declared type, or `unknown` for an event not declared. */
export type EventData<E extends string, Events = CometEvents> = string extends E
  ? unknown
  : E extends keyof Events ? Events[E] : unknown

/** The data a `subscribe()` topic delivers: `<channel>.<event>` of a declared event, else `unknown`. */
export type TopicData<Topic extends string, Events = CometEvents> = Topic extends `${string}.${infer E}`
  ? EventData<E, Events>
  : unknown
