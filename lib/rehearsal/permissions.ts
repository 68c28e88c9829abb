import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkPermissions, formatReport } from './iam-check.ts';
import { referenceResolver, type StackScope } from './intrinsics.ts';

/** Grants the task role needs on code paths a short rehearsal does not reach, each with that path. */
export const EXPECTED_UNUSED_FILE = fileURLToPath(new URL('./iam-expected-unused.txt', import.meta.url));

/**
 * The offline IAM check on the record of every AWS call the task made (only calls signed with the
 * task's key; the control plane's are not the task role's), with references resolved as the
 * runner resolved the task's environment. Strict: a grant no call used fails the check unless
 * `iam-expected-unused.txt` names it. Writes the full report to `reportFile`; returns its summary
 * line, or throws with the denied calls and the unused grants.
 */
export async function verifyPermissions(input: {
  assemblyDir: string;
  stackName: string;
  recordFile: string;
  scope: StackScope;
  reportFile: string;
  /** Default `EXPECTED_UNUSED_FILE`. */
  allowUnusedFile?: string;
}): Promise<string> {
  const report = await checkPermissions({
    assemblyDir: input.assemblyDir,
    stackName: input.stackName,
    recordFile: input.recordFile,
    reference: referenceResolver(input.scope),
    allowUnusedFile: input.allowUnusedFile ?? EXPECTED_UNUSED_FILE,
    strict: true,
  });
  const text = formatReport(report);
  writeFileSync(input.reportFile, `${text}\n`);
  const lines = text.split('\n');
  const summary = lines[lines.length - 1] as string;
  if (!report.ok) {
    throw new Error(
      `${lines.filter((l) => l.startsWith('DENIED') || l.startsWith('UNUSED')).join('; ')}; ${summary} (report: ${input.reportFile})`,
    );
  }
  return summary;
}
