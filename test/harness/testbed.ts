import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { ManagedProcess } from '../../lib/local/process.ts';

/**
 * One per test file: a scratch directory for the processes the file starts, and their logs.
 * Every process is stopped after the file's tests; the directory is removed when all passed
 * and kept (its path and the tail of each log printed) when one failed.
 */
export class TestBed {
  readonly dir: string;
  private readonly processes: ManagedProcess[] = [];
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private failed = false;

  constructor(name: string) {
    this.dir = mkdtempSync(join(tmpdir(), `edge-${name}-`));
    afterEach((ctx) => {
      if (ctx.task.result?.state === 'fail') this.failed = true;
    });
    afterAll(async () => {
      await this.stopAll();
    });
  }

  track<T extends ManagedProcess>(proc: T): T {
    this.processes.push(proc);
    return proc;
  }

  onStop(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async stopAll(): Promise<void> {
    for (const fn of this.cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
    await Promise.all(this.processes.map((p) => p.stop().catch(() => {})));
    if (this.failed) {
      console.error(`test bed kept for inspection: ${this.dir}`);
      for (const f of readdirSync(this.dir).filter((f) => f.endsWith('.log'))) {
        const text = readFileSync(join(this.dir, f), 'utf8').split('\n').slice(-30).join('\n');
        console.error(`--- ${f} (last 30 lines)\n${text}`);
      }
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
