import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessSpec {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** stdout and stderr go here. */
  readonly logFile: string;
  /** Resolves true once the process (its pid given) serves; polled until readyTimeoutMs. */
  readonly ready: (pid: number | undefined) => Promise<boolean>;
  readonly readyTimeoutMs?: number;
  /** Signal for a graceful stop (nginx: SIGQUIT lets in-flight requests finish). */
  readonly stopSignal?: NodeJS.Signals;
  /** Run as this user (the caller is root). */
  readonly user?: { readonly uid: number; readonly gid: number };
}

/** A child process started for the local edge or a test, stopped for sure. */
export class ManagedProcess {
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly spec: ProcessSpec,
    private readonly child: ChildProcess,
    private readonly log: WriteStream,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        resolve(code);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  static async start(spec: ProcessSpec): Promise<ManagedProcess> {
    const log = createWriteStream(spec.logFile, { flags: 'a' });
    const child = spawn(spec.command, [...spec.args], {
      env: spec.env ?? process.env,
      cwd: spec.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const proc = new ManagedProcess(spec, child, log);
    child.once('error', (err) => log.write(`spawn error: ${err.message}\n`));
    const deadline = Date.now() + (spec.readyTimeoutMs ?? 20_000);
    while (Date.now() < deadline) {
      if (!proc.running) {
        throw new Error(
          `${spec.name} exited with code ${proc.exitCode} before it was ready; see ${spec.logFile}`,
        );
      }
      if (await spec.ready(child.pid).catch(() => false)) return proc;
      await sleep(50);
    }
    await proc.stop();
    throw new Error(
      `${spec.name} was not ready within ${spec.readyTimeoutMs ?? 20_000} ms; see ${spec.logFile}`,
    );
  }

  /** Graceful signal, then SIGKILL after the grace period. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.running) {
      this.child.kill(this.spec.stopSignal ?? 'SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // Output still in flight after exit, or from a grandchild that inherited the pipe (nginx's
    // workers), must not reach a closed log: that is an uncaught 'write after end'.
    for (const out of [this.child.stdout, this.child.stderr]) {
      out?.unpipe(this.log);
      out?.destroy();
    }
    await new Promise<void>((resolve) => this.log.end(resolve));
  }

  /** Hard stop, for outage tests. */
  async kill(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
