import { appendFileSync } from 'node:fs';

/** One AWS API call as IAM sees it: who asked for what, on which resource, with which condition keys. */
export interface CallRecord {
  readonly time: string;
  readonly service: 'sns' | 'sqs' | 'kms' | 'secretsmanager' | 'route53' | 'dynamodb';
  /** The IAM action, e.g. `kms:GenerateDataKey`. */
  readonly action: string;
  /** The ARN the call is authorized against (`*` for actions without resource-level permissions). */
  readonly resource: string;
  readonly region: string;
  /**
   * Who signed the call, told apart by its access key id (`principals` of the stand-in): `task`
   * for calls the sidecars make with the task role, another name (`control-plane`) for callers
   * that are not the task; a service principal (`sns.amazonaws.com`) for what AWS does on their
   * behalf (SNS delivering into a queue).
   */
  readonly principal: string;
  /** Condition keys that matter for this call (values as IAM compares them). */
  readonly context: Readonly<Record<string, string | readonly string[]>>;
  /** For service deliveries: the resource policy that authorizes them (the queue policy). */
  readonly resourcePolicy?: unknown;
  /** The API's answer: `ok` or the error code returned to the caller. */
  readonly outcome: string;
}

export type NewCallRecord = Omit<CallRecord, 'time' | 'outcome' | 'principal'> & {
  readonly principal?: string;
};

/** Appends one JSON line per call (synchronously, so a crash loses nothing already answered). */
export class CallRecorder {
  constructor(readonly file: string) {}

  /** `caller`: who signed the request; a principal the call names itself (a service) wins. */
  write(call: NewCallRecord, outcome: string, caller = 'task'): void {
    const line: CallRecord = { time: new Date().toISOString(), principal: caller, ...call, outcome };
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
  }
}

export function readCallRecords(text: string): CallRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as CallRecord);
}
