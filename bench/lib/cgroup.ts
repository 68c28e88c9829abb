import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processTree } from './cpu.ts';

/**
 * A CPU budget for one server under test: a cgroup whose CFS quota is `cores` CPUs. With both
 * servers held to the same budget and the load generators free to use the rest of the machine,
 * the server is the bottleneck, so requests/s and handshakes/s measure the server's cost per
 * operation rather than the client's. cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us).
 */
export class CpuBudget {
  private constructor(
    readonly dir: string,
    readonly cores: number,
  ) {}

  static available(): boolean {
    return CpuBudget.parentDir() !== undefined;
  }

  private static parentDir(): { dir: string; v2: boolean } | undefined {
    const v2 = '/sys/fs/cgroup/cgroup.controllers';
    if (existsSync(v2) && readFileSync(v2, 'utf8').split(/\s+/).includes('cpu')) {
      return { dir: '/sys/fs/cgroup', v2: true };
    }
    if (existsSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')) return { dir: '/sys/fs/cgroup/cpu', v2: false };
    return undefined;
  }

  static async create(name: string, cores: number): Promise<CpuBudget> {
    const parent = CpuBudget.parentDir();
    if (!parent) throw new Error('no writable cgroup cpu controller');
    const dir = join(parent.dir, name);
    await mkdir(dir, { recursive: true });
    // A short period keeps the throttling smooth (no 100 ms stalls) at the same average budget.
    const period = 10_000;
    const quota = Math.max(1000, Math.round(cores * period));
    if (parent.v2) {
      await writeFile(join(dir, 'cpu.max'), `${quota} ${period}`);
    } else {
      await writeFile(join(dir, 'cpu.cfs_period_us'), String(period));
      await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota));
    }
    return new CpuBudget(dir, cores);
  }

  /** Moves a process and its descendants (nginx's master and workers) into the budget. */
  async add(root: number): Promise<void> {
    for (const pid of processTree(root)) await writeFile(join(this.dir, 'cgroup.procs'), String(pid));
  }

  /** Removes the cgroup; its processes must have exited. */
  async remove(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      try {
        await rmdir(this.dir);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
