import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { clientPrefix } from './cpu.ts';

export const HANDSHAKE_CLIENT = fileURLToPath(new URL('../handshake-client.ts', import.meta.url));

function runCommand(command: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${stderr}${stdout}`));
    });
  });
}

/**
 * wrk takes the TLS server name and the Host header from the URL, so the bench names must
 * resolve. Rather than touch the machine's /etc/hosts, wrk runs in a private mount namespace
 * where a bench-only hosts file is bind-mounted over /etc/hosts (needs root).
 */
export async function writeHostsFile(path: string, names: readonly string[]): Promise<void> {
  await writeFile(path, `127.0.0.1 localhost\n${names.map((n) => `127.0.0.1 ${n}`).join('\n')}\n`);
}

export interface WrkResult {
  readonly requestsPerSecond: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly socketErrors: string | undefined;
  readonly latencyP50: string | undefined;
  readonly latencyP99: string | undefined;
}

export async function runWrk(opts: {
  readonly hostsFile: string;
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  readonly pin: boolean;
  readonly cpus: string;
  /** Request headers, `Name: value`. */
  readonly headers?: readonly string[];
}): Promise<WrkResult> {
  const wrk = [
    ...clientPrefix(opts.pin, opts.cpus),
    'wrk',
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.seconds}s`,
    '--latency',
    ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
    opts.url,
  ];
  const quoted = wrk.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = `mount --bind '${opts.hostsFile}' /etc/hosts && exec ${quoted}`;
  const { stdout } = await runCommand('unshare', ['-m', 'sh', '-c', script]);
  const rps = stdout.match(/Requests\/sec:\s+([\d.]+)/);
  const total = stdout.match(/(\d+) requests in/);
  if (!rps?.[1] || !total?.[1]) throw new Error(`could not read wrk's output:\n${stdout}`);
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    non2xx: Number(stdout.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0),
    socketErrors: stdout.match(/Socket errors:([^\n]*)/)?.[1]?.trim(),
    latencyP50: stdout.match(/^\s+50%\s+(\S+)/m)?.[1],
    latencyP99: stdout.match(/^\s+99%\s+(\S+)/m)?.[1],
  };
}

export interface HandshakeResult {
  readonly completed: number;
  readonly errors: number;
  readonly resumed: number;
  readonly elapsedMs: number;
  readonly rate: number;
  readonly firstErrors: string[];
  /** Key-exchange group of the first handshake (X25519, X25519MLKEM768, ...). */
  readonly group?: string;
}

export interface HandshakeOptions {
  readonly port: number;
  /** --mode resume: a second server; each name's visits alternate between the two. */
  readonly otherPort?: number;
  readonly prefix: string;
  readonly suffix: string;
  readonly from: number;
  readonly to: number;
  readonly mode: 'cycle' | 'once' | 'resume';
  readonly concurrency: number;
  readonly durationMs: number;
  readonly pin: boolean;
  readonly cpus: string;
  /** Key-exchange groups the client offers (OpenSSL list, e.g. X25519); default: Node's. */
  readonly groups?: string;
}

async function runHandshakeClient(opts: HandshakeOptions): Promise<HandshakeResult> {
  const args = [
    ...clientPrefix(opts.pin, opts.cpus),
    process.execPath,
    '--import',
    'tsx',
    HANDSHAKE_CLIENT,
    '--port',
    String(opts.port),
    ...(opts.otherPort === undefined ? [] : ['--other-port', String(opts.otherPort)]),
    '--prefix',
    opts.prefix,
    '--suffix',
    opts.suffix,
    '--from',
    String(opts.from),
    '--to',
    String(opts.to),
    '--mode',
    opts.mode,
    '--concurrency',
    String(opts.concurrency),
    '--duration-ms',
    String(opts.durationMs),
    ...(opts.groups ? ['--groups', opts.groups] : []),
  ];
  const [command, ...rest] = args;
  const { stdout } = await runCommand(command as string, rest);
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as HandshakeResult;
}

/**
 * Runs `processes` handshake clients at once, each on its own share of [from, to), and adds
 * them up; the rate is all completed handshakes over the longest client's elapsed time.
 */
export async function runHandshakes(
  opts: HandshakeOptions & { readonly processes: number },
): Promise<HandshakeResult> {
  const span = opts.to - opts.from;
  const n = Math.max(1, Math.min(opts.processes, span));
  const parts = Array.from({ length: n }, (_, i) => ({
    ...opts,
    from: opts.from + Math.floor((span * i) / n),
    to: opts.from + Math.floor((span * (i + 1)) / n),
  }));
  const results = await Promise.all(parts.map(runHandshakeClient));
  const completed = results.reduce((a, r) => a + r.completed, 0);
  const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
  return {
    completed,
    errors: results.reduce((a, r) => a + r.errors, 0),
    resumed: results.reduce((a, r) => a + r.resumed, 0),
    elapsedMs,
    rate: elapsedMs > 0 ? (completed * 1000) / elapsedMs : 0,
    firstErrors: results.flatMap((r) => r.firstErrors).slice(0, 5),
    group: results.find((r) => r.group)?.group,
  };
}
