/**
 * One lane per entity: work for one entity runs in the order it was queued, one at a time; work
 * for different entities runs concurrently. A failure fails only its own task; the lane goes on.
 */
export class EntityLanes {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Entities with queued or running work. */
  get size(): number {
    return this.tails.size;
  }

  run<T>(entity: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(entity) ?? Promise.resolve();
    const mine = prev.then(fn, fn);
    const tail = mine.then(
      () => {},
      () => {},
    );
    this.tails.set(entity, tail);
    void tail.then(() => {
      if (this.tails.get(entity) === tail) this.tails.delete(entity);
    });
    return mine;
  }
}
