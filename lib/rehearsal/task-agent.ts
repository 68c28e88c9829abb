import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blockedBy, stopWaves, TaskStoppedError } from './depends-on.ts';
import { HealthMonitor, type HealthStatus } from './health.ts';
import { podman, podmanOk } from './podman.ts';
import type { ContainerDefinition } from './task-definition.ts';

/** A container of the task as the agent runs it: the definition plus what the rehearsal resolved. */
export interface RunnableContainer {
  readonly def: ContainerDefinition;
  readonly image: string;
  readonly environment: Readonly<Record<string, string>>;
  /** ECS `secrets`: variable name → local file holding the value. */
  readonly secrets: readonly { readonly name: string; readonly file: string }[];
  readonly extraMounts: readonly { readonly hostPath: string; readonly containerPath: string }[];
  /** The image's STOPSIGNAL (what `docker stop`, and so ECS, sends first). */
  readonly stopSignal: string;
}

export interface TaskSpec {
  readonly id: string;
  readonly containers: readonly RunnableContainer[];
  readonly volumes: readonly string[];
  readonly logDir: string;
}

type Phase = 'PENDING' | 'RUNNING' | 'STOPPED';

interface ContainerRun {
  c: RunnableContainer;
  readonly podmanName: string;
  phase: Phase;
  exitCode?: number;
  startedAt?: number;
  health?: HealthMonitor;
  healthStatus: HealthStatus;
  restarts: number;
}

export interface StopResult {
  readonly container: string;
  readonly signal: string;
  readonly exitCode: number;
  readonly seconds: number;
  readonly stopTimeoutSeconds: number;
  /** SIGKILL was needed: the container outlived its stop timeout. */
  readonly killed: boolean;
}

/** Fargate's stop timeout when the container definition sets none. */
const DEFAULT_STOP_TIMEOUT_S = 30;
const POLL_MS = 500;

const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGTERM: 15,
  SIGWINCH: 28,
};

export function signalNumber(signal: string): number | undefined {
  const name = signal.startsWith('SIG') ? signal : `SIG${signal}`;
  return SIGNALS[name] ?? (/^\d+$/.test(signal) ? Number(signal) : undefined);
}

/** This machine's hard limit on open files: containers cannot be given more. */
function hostNofileHardLimit(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : Number.POSITIVE_INFINITY;
}

export { TaskStoppedError };

/**
 * Plays the ECS agent's part for one task in one podman pod (see lib/rehearsal/README.md): starts
 * containers as their `dependsOn` conditions are met, runs their health checks, restarts them in
 * place under a restart policy, stops the task when an essential container exits or turns
 * unhealthy, and stops it as ECS does (reverse dependency order, stop signal, stop timeout, SIGKILL).
 */
export class TaskAgent {
  readonly pod: string;
  private readonly runs = new Map<string, ContainerRun>();
  private stopReason: string | undefined;
  /** Health checks that turned UNHEALTHY, essential containers or not (what ECS would act on). */
  unhealthyTransitions = 0;
  private watching = false;
  private readonly events: string[] = [];
  private secretNames: string[] = [];

  constructor(
    private readonly spec: TaskSpec,
    private readonly log: (line: string) => void,
  ) {
    this.pod = `rehearse-${spec.id}`;
    for (const c of spec.containers) {
      this.runs.set(c.def.name, {
        c,
        podmanName: `${this.pod}-${c.def.name}`,
        phase: 'PENDING',
        healthStatus: 'UNKNOWN',
        restarts: 0,
      });
    }
  }

  /** Whether any container was started (so there is something to stop). */
  get everStarted(): boolean {
    return [...this.runs.values()].some((r) => r.startedAt !== undefined);
  }

  /** Why the task stopped on its own, if it did. */
  get stoppedBecause(): string | undefined {
    return this.stopReason;
  }

  private note(line: string): void {
    this.events.push(`${new Date().toISOString()} ${line}`);
    this.log(line);
  }

  private volumeName(v: string): string {
    return `${this.pod}-${v}`;
  }

  /** The pod: its own network namespace (awsvpc), with the task's network sysctls, and volumes. */
  async createPod(): Promise<void> {
    const sysctls = new Map<string, string>();
    for (const c of this.spec.containers) {
      for (const s of c.def.systemControls) sysctls.set(s.namespace, s.value);
    }
    await podmanOk([
      'pod',
      'create',
      '--name',
      this.pod,
      ...[...sysctls].flatMap(([k, v]) => ['--sysctl', `${k}=${v}`]),
    ]);
    await podmanOk(['pod', 'start', this.pod]);
    for (const v of this.spec.volumes) await podmanOk(['volume', 'create', this.volumeName(v)]);
  }

  /** The containers, created (not started) in the pod, with their secrets. */
  async createContainers(containers: readonly RunnableContainer[]): Promise<void> {
    for (const c of containers) {
      const run = this.runs.get(c.def.name);
      if (!run) throw new Error(`container ${c.def.name} is not part of the task`);
      run.c = c;
    }
    await this.createSecrets();
    for (const run of this.runs.values()) await podmanOk(this.createArgs(run));
  }

  private createArgs(run: ContainerRun): string[] {
    const d = run.c.def;
    const args = ['create', '--name', run.podmanName, '--pod', this.pod, '--log-driver', 'k8s-file'];
    if (d.user) args.push('--user', d.user);
    if (d.readonlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
    for (const u of d.ulimits) {
      // Any --ulimit makes runc's setrlimit fail on these machines (README: not modelled); the
      // container gets the machine's limit, said here so that a difference is visible.
      const host = u.name === 'nofile' ? hostNofileHardLimit() : undefined;
      this.note(
        `${d.name}: ulimit ${u.name}=${u.softLimit}:${u.hardLimit} not applied (podman cannot set ulimits here)${host ? `; it runs with the machine's ${host}` : ''}`,
      );
    }
    if (d.entryPoint) args.push('--entrypoint', JSON.stringify(d.entryPoint));
    if (d.workingDirectory) args.push('--workdir', d.workingDirectory);
    for (const [k, v] of Object.entries(run.c.environment)) args.push('--env', `${k}=${v}`);
    for (const s of run.c.secrets) {
      const secretName = `${run.podmanName}-${s.name}`.toLowerCase();
      args.push('--secret', `${secretName},type=env,target=${s.name}`);
    }
    for (const m of d.mountPoints) {
      args.push(
        '--volume',
        `${this.volumeName(m.sourceVolume)}:${m.containerPath}${m.readOnly ? ':ro' : ''}`,
      );
    }
    for (const m of run.c.extraMounts) args.push('--volume', `${m.hostPath}:${m.containerPath}:ro`);
    args.push(run.c.image, ...(d.command ?? []));
    return args;
  }

  /** podman secrets for the ECS `secrets` (created before the containers that name them). */
  private async createSecrets(): Promise<void> {
    for (const run of this.runs.values()) {
      for (const s of run.c.secrets) {
        const secretName = `${run.podmanName}-${s.name}`.toLowerCase();
        await podmanOk(['secret', 'create', secretName, s.file]);
        this.secretNames.push(secretName);
      }
    }
  }

  /** Why `run` cannot start yet (undefined: it can), or throws when it never will. */
  private blockedBy(run: ContainerRun): string | undefined {
    return blockedBy(run.c.def, (name) => {
      const d = this.runs.get(name);
      return (
        d && {
          phase: d.phase,
          exitCode: d.exitCode,
          health: d.healthStatus,
          hasHealthCheck: d.c.def.healthCheck !== undefined,
        }
      );
    });
  }

  private async startContainer(run: ContainerRun, restart = false): Promise<void> {
    await podmanOk(['start', run.podmanName]);
    run.phase = 'RUNNING';
    run.startedAt = Date.now();
    run.exitCode = undefined;
    this.note(`${restart ? 'restarted' : 'started'} ${run.c.def.name}`);
    const hc = run.c.def.healthCheck;
    if (hc) {
      run.health?.stop();
      run.healthStatus = 'UNKNOWN';
      run.health = new HealthMonitor(run.podmanName, hc, (status) => {
        run.healthStatus = status;
        this.note(
          `${run.c.def.name} is ${status}${status === 'UNHEALTHY' ? `: ${run.health?.lastOutput}` : ''}`,
        );
        if (status === 'UNHEALTHY') this.unhealthyTransitions += 1;
        if (status === 'UNHEALTHY' && run.c.def.essential) {
          this.stopReason ??= `essential container ${run.c.def.name} is UNHEALTHY (the service would replace the task)`;
        }
      });
      run.health.start();
    }
  }

  /** Polls container states; handles exits (restart policy, essential containers). */
  private async watch(): Promise<void> {
    const out = await podmanOk(['ps', '-a', '--filter', `pod=${this.pod}`, '--format', 'json']);
    const list = JSON.parse(out || '[]') as { Names: string[]; State: string; ExitCode: number }[];
    for (const run of this.runs.values()) {
      if (run.phase !== 'RUNNING') continue;
      const p = list.find((x) => x.Names.includes(run.podmanName));
      if (!p || p.State === 'running') continue;
      if (p.State !== 'exited' && p.State !== 'stopped') continue;
      run.phase = 'STOPPED';
      run.exitCode = p.ExitCode;
      run.health?.stop();
      this.note(`${run.c.def.name} exited ${p.ExitCode}`);
      if (this.stopping) continue;
      const rp = run.c.def.restartPolicy;
      const ranSeconds = (Date.now() - (run.startedAt ?? Date.now())) / 1000;
      if (rp && !rp.ignoredExitCodes.includes(p.ExitCode)) {
        if (ranSeconds >= rp.restartAttemptPeriodSeconds) {
          run.restarts += 1;
          await this.startContainer(run, true);
          continue;
        }
        this.note(
          `${run.c.def.name} ran ${ranSeconds.toFixed(0)} s, less than its restartAttemptPeriod (${rp.restartAttemptPeriodSeconds} s): not restarted`,
        );
      }
      if (run.c.def.essential)
        this.stopReason ??= `essential container ${run.c.def.name} exited ${p.ExitCode}`;
    }
  }

  private stopping = false;

  /**
   * Starts the containers in dependency order and resolves once every one has started and every
   * dependency condition was met (the task is RUNNING), then keeps watching in the background.
   */
  async start(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.watching = true;
    void this.watchLoop();
    for (;;) {
      if (this.stopReason) throw new TaskStoppedError(this.stopReason);
      const pending = [...this.runs.values()].filter((r) => r.phase === 'PENDING');
      if (pending.length === 0) return;
      const waits: string[] = [];
      for (const run of pending) {
        let why: string | undefined;
        try {
          why = this.blockedBy(run);
        } catch (err) {
          this.stopReason ??= (err as Error).message;
          throw err;
        }
        if (why) waits.push(`${run.c.def.name} waits for ${why}`);
        else await this.startContainer(run);
      }
      if (Date.now() > deadline) {
        this.stopReason ??= `task not RUNNING after ${timeoutMs / 1000} s: ${waits.join('; ')}`;
        throw new TaskStoppedError(this.stopReason);
      }
      await sleep(POLL_MS);
    }
  }

  private async watchLoop(): Promise<void> {
    while (this.watching) {
      try {
        await this.watch();
      } catch (err) {
        this.note(`watch: ${(err as Error).message}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Resolves when every container with a health check is HEALTHY, or throws if the task stops. */
  async healthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.stopReason) throw new TaskStoppedError(this.stopReason);
      const waiting = [...this.runs.values()].filter(
        (r) => r.c.def.healthCheck && r.healthStatus !== 'HEALTHY',
      );
      if (waiting.length === 0) return;
      if (Date.now() > deadline) {
        throw new TaskStoppedError(
          `not healthy after ${timeoutMs / 1000} s: ${waiting.map((r) => `${r.c.def.name} ${r.healthStatus} (${r.health?.lastOutput || 'no output'})`).join('; ')}`,
        );
      }
      await sleep(POLL_MS);
    }
  }

  /** The task's address on the pod network (awsvpc: the task's ENI address). */
  async address(): Promise<string> {
    const infra = (await podmanOk(['pod', 'inspect', this.pod, '--format', '{{.InfraContainerID}}'])).trim();
    const ip = (
      await podmanOk(['inspect', infra, '--format', '{{.NetworkSettings.Networks.podman.IPAddress}}'])
    ).trim();
    if (!ip) throw new Error(`pod ${this.pod} has no address on the podman network`);
    return ip;
  }

  /** Runs a command in a running container (as the health checks do). */
  exec(container: string, argv: readonly string[], timeoutMs = 10_000) {
    const run = this.runs.get(container);
    if (!run) throw new Error(`no container ${container} in the task`);
    return podman(['exec', run.podmanName, ...argv], { timeoutMs });
  }

  /** What a container has logged so far (stdout and stderr). */
  async logs(container: string): Promise<string> {
    const run = this.runs.get(container);
    if (!run) throw new Error(`no container ${container} in the task`);
    const r = await podman(['logs', run.podmanName], { timeoutMs: 20_000 });
    return `${r.stdout}${r.stderr}`;
  }

  restarts(container: string): number {
    return this.runs.get(container)?.restarts ?? 0;
  }

  /**
   * Stops the task as ECS does: containers that others depend on stop after them; each gets its
   * image's stop signal, then SIGKILL once its stop timeout has passed.
   */
  async stop(): Promise<StopResult[]> {
    this.stopping = true;
    const results: StopResult[] = [];
    const running = [...this.runs.values()].filter((r) => r.phase === 'RUNNING').map((r) => r.c.def);
    for (const wave of stopWaves(running)) {
      results.push(
        ...(await Promise.all(wave.map((name) => this.stopOne(this.runs.get(name) as ContainerRun)))),
      );
    }
    this.watching = false;
    return results;
  }

  private async stopOne(run: ContainerRun): Promise<StopResult> {
    run.health?.stop();
    const signal = run.c.stopSignal;
    const timeout = run.c.def.stopTimeoutSeconds ?? DEFAULT_STOP_TIMEOUT_S;
    const t0 = Date.now();
    await podman(['kill', '--signal', signal, run.podmanName]);
    let killed = false;
    let exitCode = -1;
    for (;;) {
      const out = await podmanOk([
        'inspect',
        '--format',
        '{{.State.Running}} {{.State.ExitCode}}',
        run.podmanName,
      ]);
      const [running, code] = out.trim().split(' ');
      if (running === 'false') {
        exitCode = Number(code);
        break;
      }
      if (Date.now() - t0 > timeout * 1000) {
        killed = true;
        await podman(['kill', '--signal', 'SIGKILL', run.podmanName]);
      }
      await sleep(200);
    }
    run.phase = 'STOPPED';
    run.exitCode = exitCode;
    const seconds = (Date.now() - t0) / 1000;
    this.note(
      `stopped ${run.c.def.name} with ${signal}: exit ${exitCode} after ${seconds.toFixed(1)} s${killed ? ' (SIGKILL)' : ''}`,
    );
    return { container: run.c.def.name, signal, exitCode, seconds, stopTimeoutSeconds: timeout, killed };
  }

  /** Container logs and the agent's own events into the log folder. */
  async saveLogs(): Promise<void> {
    for (const run of this.runs.values()) {
      const r = await podman(['logs', run.podmanName]);
      await writeFile(join(this.spec.logDir, `${run.c.def.name}.log`), `${r.stdout}${r.stderr}`);
    }
    await writeFile(join(this.spec.logDir, 'agent.log'), `${this.events.join('\n')}\n`);
  }

  /** Removes the pod, its containers, volumes and secrets, whatever state they are in. */
  async destroy(): Promise<void> {
    this.watching = false;
    for (const run of this.runs.values()) run.health?.stop();
    await podman(['pod', 'rm', '--force', '--time', '0', this.pod], { timeoutMs: 60_000 });
    for (const v of this.spec.volumes) await podman(['volume', 'rm', '--force', this.volumeName(v)]);
    for (const s of this.secretNames) await podman(['secret', 'rm', s]);
  }
}
