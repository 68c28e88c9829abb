import { writeFileSync } from 'node:fs';
import { checkPermissions, formatReport } from './iam-check.ts';
import { referenceResolver, type StackScope } from './intrinsics.ts';

/**
 * The offline IAM check on the record of every AWS call the task made, with references resolved
 * as the runner resolved the task's environment. Writes the full report to `reportFile`; returns
 * its summary line, or throws with the denied calls.
 */
export async function verifyPermissions(input: {
  assemblyDir: string;
  stackName: string;
  recordFile: string;
  scope: StackScope;
  reportFile: string;
}): Promise<string> {
  const report = await checkPermissions({
    assemblyDir: input.assemblyDir,
    stackName: input.stackName,
    recordFile: input.recordFile,
    reference: referenceResolver(input.scope),
  });
  const text = formatReport(report);
  writeFileSync(input.reportFile, `${text}\n`);
  const lines = text.split('\n');
  const summary = lines[lines.length - 1] as string;
  if (!report.ok) {
    throw new Error(
      `${lines.filter((l) => l.startsWith('DENIED')).join('; ')}; ${summary} (report: ${input.reportFile})`,
    );
  }
  return summary;
}
