import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Samples the given processes with `perf record -g` while fn runs, then writes perf's flat
 * report (self time by shared object and symbol) next to the data. Used by BENCH_PERF=1 on an
 * extra, unmeasured round, so profiling never perturbs the figures.
 */
export async function profileDuring<T>(
  pids: readonly number[],
  out: string,
  fn: () => Promise<T>,
): Promise<T> {
  const perf: ChildProcess = spawn(
    'perf',
    ['record', '-F', '2999', '-g', '-o', `${out}.data`, '-p', pids.join(',')],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => perf.once('exit', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await fn();
  } finally {
    perf.kill('SIGINT');
    await exited;
    const { stdout } = await run(
      'perf',
      [
        'report',
        '-i',
        `${out}.data`,
        '--stdio',
        '--no-children',
        '--sort',
        'dso,sym',
        '--percent-limit',
        '0.4',
        '-g',
        'none',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    await writeFile(`${out}.txt`, stdout);
  }
}
