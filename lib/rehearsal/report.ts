/** One check of the rehearsal and its outcome. */
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly seconds: number;
}

/** Runs and prints checks as they go; a failed check never hides the ones after it. */
export class CheckReport {
  readonly results: CheckResult[] = [];

  constructor(private readonly print: (line: string) => void) {}

  /** Runs `fn`; it returns a detail line (pass) or throws (fail). Returns whether it passed. */
  async check(name: string, fn: () => Promise<string>): Promise<boolean> {
    const t0 = Date.now();
    let ok = true;
    let detail: string;
    try {
      detail = await fn();
    } catch (err) {
      ok = false;
      detail = (err as Error).message;
    }
    const result = { name, ok, detail, seconds: (Date.now() - t0) / 1000 };
    this.results.push(result);
    this.print(
      `${ok ? 'ok  ' : 'FAIL'} ${name} (${result.seconds.toFixed(1)} s)${detail ? `: ${detail}` : ''}`,
    );
    return ok;
  }

  /** A check that could not run because an earlier step failed. */
  skip(name: string, because: string): void {
    this.results.push({ name, ok: false, detail: `not run: ${because}`, seconds: 0 });
    this.print(`FAIL ${name}: not run: ${because}`);
  }

  get passed(): number {
    return this.results.filter((r) => r.ok).length;
  }

  get failed(): boolean {
    return this.results.some((r) => !r.ok);
  }
}
