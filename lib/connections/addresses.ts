/** Open sockets per client address (for `maxAnonymousPerAddress`); an address with none is forgotten. */
export class AddressCounts {
  #counts = new Map<string, number>()

  count (address: string): number {
    return this.#counts.get(address) ?? 0
  }

  add (address: string): void {
    this.#counts.set(address, this.count(address) + 1)
  }

  delete (address: string): void {
    const n = this.count(address) - 1
    if (n > 0) this.#counts.set(address, n)
    else this.#counts.delete(address)
  }
}
