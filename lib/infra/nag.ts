import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export interface NagAcknowledgement {
  /** The cdk-nag rule, e.g. `AwsSolutions-IAM5`. */
  readonly id: string;
  /** Why the finding is acceptable here; shown in the validation report. */
  readonly reason: string;
  /** Finding ids (e.g. `Resource::*`) for rules that report several findings per resource. */
  readonly findings?: readonly string[];
}

/** Acknowledges cdk-nag findings on a construct and everything below it, each with its reason. */
export function acknowledge(scope: IConstruct, rules: readonly NagAcknowledgement[]): void {
  for (const rule of rules) {
    const ids = rule.findings ? rule.findings.map((f) => `${rule.id}[${f}]`) : [rule.id];
    for (const id of ids) Validations.of(scope).acknowledge({ id, reason: rule.reason });
  }
}
