import * as logs from 'aws-cdk-lib/aws-logs';

/** The CloudWatch Logs retention enum member for a number of days the config already validated. */
export function logRetention(days: number): logs.RetentionDays {
  const match = Object.values(logs.RetentionDays).find((v) => v === days);
  if (match === undefined) throw new Error(`${days} days is not a CloudWatch Logs retention period`);
  return match as logs.RetentionDays;
}
