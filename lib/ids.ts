import { randomBytes } from 'node:crypto'

/**
 * Names made on one instance (or emitter): connection ids and the ids of channel messages published
 * without history, `<instance>.<n>` from one counter, so no two are equal. A history id (`<ms>-<seq>`)
 * never looks like one.
 */
export class LocalIds {
  readonly instance = randomBytes(6).toString('hex')
  #n = 0

  next (): string {
    return `${this.instance}.${(++this.#n).toString(36)}`
  }
}
