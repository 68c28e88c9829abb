import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagedProcess } from '../../lib/local/process.ts';

/** What a fault kills: a process the run owns, or one of an nginx master's workers. */
export type FaultKind =
  | 'region-redis'
  | 'bus-redis'
  | 'sqs-listener'
  | 'redis-listener'
  | 'issuer'
  | 'pebble'
  | 'origin'
  | 'nginx-worker';

export interface FaultTarget {
  readonly kind: FaultKind;
  /** e.g. "sqs-listener:region-b". */
  readonly name: string;
  /** kill -9, by pid. */
  kill(): Promise<void>;
  /** Starts it again with the same command line (nginx: waits for the master to respawn the worker). */
  restart(): Promise<void>;
}

/**
 * A process the run kills and restarts; `current` is the live one (stopped at the end). A custom
 * restart (Pebble's own, say) may replace how it comes back.
 */
export class Restartable implements FaultTarget {
  constructor(
    readonly kind: FaultKind,
    readonly name: string,
    public current: ManagedProcess,
    private readonly again: (old: ManagedProcess) => Promise<ManagedProcess> = (old) =>
      ManagedProcess.start(old.spec),
  ) {}

  kill(): Promise<void> {
    return this.current.kill();
  }

  async restart(): Promise<void> {
    this.current = await this.again(this.current);
  }
}

/** kill -9 of one nginx worker (its pid read from the master's children); the master respawns it. */
export class NginxWorker implements FaultTarget {
  readonly kind = 'nginx-worker' as const;
  private workers = 0;

  constructor(
    readonly name: string,
    private readonly master: () => number | undefined,
    private readonly random: () => number,
  ) {}

  async kill(): Promise<void> {
    const pids = await this.pids();
    this.workers = pids.length;
    const pid = pids[Math.floor(this.random() * pids.length)];
    if (pid === undefined) throw new Error(`${this.name}: the nginx master has no workers`);
    process.kill(pid, 'SIGKILL');
  }

  async restart(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while ((await this.pids()).length < this.workers) {
      if (Date.now() > deadline) throw new Error(`${this.name}: no worker respawned within 10 s`);
      await sleep(20);
    }
  }

  /** The master's children (workers and cache processes, which nginx respawns alike). */
  private async pids(): Promise<number[]> {
    const master = this.master();
    if (master === undefined) return [];
    const text = await readFile(`/proc/${master}/task/${master}/children`, 'utf8').catch(() => '');
    const pids = text.trim().split(/\s+/).filter(Boolean).map(Number);
    const workers: number[] = [];
    for (const pid of pids) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd.includes('worker process')) workers.push(pid);
    }
    return workers;
  }
}
