import { Agent, request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadTarget {
  /** The region's address (127.0.0.x). */
  readonly address: string;
  readonly port: number;
}

export interface LoadOptions {
  readonly targets: readonly LoadTarget[];
  /** Host names every region must serve throughout (SNI = Host). */
  readonly hosts: () => readonly string[];
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** The fault in effect now (failures are counted under it), or "none". */
  readonly phase: () => string;
  readonly random: () => number;
  readonly timeoutMs?: number;
}

export interface LoadCounts {
  requests: number;
  ok: number;
  /**
   * "<phase> <kind>" → count; kind is the status with the edge's reason when it gave one
   * (`http 404 unknown tenant`, `http 502`) or the error (`ECONNRESET`).
   */
  failed: Record<string, number>;
}

/**
 * Steady HTTPS load on every region: keep-alive GETs of a few paths on the given hosts, each
 * answer that is not 200 or fails counted by its kind and by the fault in effect when it began.
 */
export class Load {
  readonly counts: LoadCounts = { requests: 0, ok: 0, failed: {} };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly agents: Agent[];

  constructor(private readonly o: LoadOptions) {
    this.agents = o.targets.map(() => new Agent({ keepAlive: true, maxSockets: o.concurrency }));
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.o.concurrency }, () => this.loop());
  }

  async stop(): Promise<LoadCounts> {
    this.running = false;
    await Promise.all(this.loops);
    for (const a of this.agents) a.destroy();
    return this.counts;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const hosts = this.o.hosts();
      const i = Math.floor(this.o.random() * this.o.targets.length);
      const host = hosts[Math.floor(this.o.random() * hosts.length)];
      if (!host) {
        await sleep(100);
        continue;
      }
      const phase = this.o.phase();
      const kind = await this.get(i, host, `/p${Math.floor(this.o.random() * 20)}.txt`);
      this.counts.requests += 1;
      if (kind === undefined) this.counts.ok += 1;
      else {
        const key = `${phase} ${kind}`;
        this.counts.failed[key] = (this.counts.failed[key] ?? 0) + 1;
        // A refused connection fails at once: do not spin.
        await sleep(20);
      }
    }
  }

  /** undefined when the answer is 200, else what went wrong. */
  private get(i: number, host: string, path: string): Promise<string | undefined> {
    const t = this.o.targets[i] as LoadTarget;
    return new Promise((resolve) => {
      const req = request(
        {
          host: t.address,
          port: t.port,
          path,
          servername: host,
          headers: { host },
          rejectUnauthorized: false,
          agent: this.agents[i],
          timeout: this.o.timeoutMs ?? 5000,
        },
        (res) => {
          // The edge's own answers say why in a one-line body ("unknown host", "unknown tenant",
          // "routing store unavailable"): kept with the status, so a 404 is told from a 404.
          let why = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (res.statusCode !== 200 && why.length < 80) why += chunk;
          });
          res.on('end', () => {
            if (res.statusCode === 200) return resolve(undefined);
            const reason = (why.split('\n')[0] ?? '').trim();
            const edge =
              res.headers['cache-control'] === 'no-store' && reason.length > 0 && reason.length < 60;
            resolve(edge ? `http ${res.statusCode} ${reason}` : `http ${res.statusCode}`);
          });
          res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      req.end();
    });
  }
}
