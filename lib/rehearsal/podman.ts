import { spawn } from 'node:child_process';

/** Podman as these machines need it: runc (crun refuses hybrid cgroups) and cgroupfs. */
const BASE_ARGS = ['--runtime', 'runc', '--cgroup-manager=cgroupfs'];

export interface PodmanResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class PodmanError extends Error {
  override name = 'PodmanError';
}

/** Runs `podman <args>`; never throws for a non-zero exit (see `podmanOk`). */
export function podman(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<PodmanResult> {
  return new Promise((resolve) => {
    const child = spawn('podman', [...BASE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          stderr += `\n(timed out after ${opts.timeoutMs} ms)`;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      stderr += err.message;
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs `podman <args>` and returns stdout, or throws with podman's own message. */
export async function podmanOk(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await podman(args, opts);
  if (r.code !== 0) {
    throw new PodmanError(`podman ${args.slice(0, 3).join(' ')}… exited ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

export interface ContainerState {
  readonly status: string;
  readonly running: boolean;
  readonly exitCode: number;
  readonly startedAt: string;
  readonly finishedAt: string;
}

export async function containerState(name: string): Promise<ContainerState> {
  const out = await podmanOk(['inspect', '--type', 'container', '--format', '{{json .State}}', name]);
  const s = JSON.parse(out) as {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    FinishedAt: string;
  };
  return {
    status: s.Status,
    running: s.Running,
    exitCode: s.ExitCode,
    startedAt: s.StartedAt,
    finishedAt: s.FinishedAt,
  };
}

/** What an image declares that the task definition may leave to it. */
export interface ImageConfig {
  readonly stopSignal: string;
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly user: string;
  readonly workingDir: string;
  readonly env: readonly string[];
}

export async function imageConfig(image: string): Promise<ImageConfig> {
  const out = await podmanOk(['image', 'inspect', '--format', '{{json .Config}}', image]);
  const c = JSON.parse(out) as {
    StopSignal?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    User?: string;
    WorkingDir?: string;
    Env?: string[] | null;
  };
  return {
    // Docker's (and so ECS's) default when the image names none.
    stopSignal: c.StopSignal || 'SIGTERM',
    entrypoint: c.Entrypoint ?? [],
    cmd: c.Cmd ?? [],
    user: c.User ?? '',
    workingDir: c.WorkingDir ?? '/',
    env: c.Env ?? [],
  };
}

export async function imageExists(image: string): Promise<boolean> {
  return (await podman(['image', 'exists', image])).code === 0;
}
