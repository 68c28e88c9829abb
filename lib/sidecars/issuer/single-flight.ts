/** Concurrent calls for one key share one run; the next call after it settles starts a new one. */
export class SingleFlight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const current = this.flights.get(key);
    if (current) return current;
    const flight = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, flight);
    return flight;
  }

  get size(): number {
    return this.flights.size;
  }

  /** Resolves when every flight running now has settled (graceful stop). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.flights.values()]);
  }
}
