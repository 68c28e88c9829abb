import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDeploymentConfig } from '../../lib/config/deployment-config.ts';
import { buildEdgeApp } from '../../lib/infra/edge-app.ts';
import { cdkContext, exampleConfig, registryImages } from './fixtures.ts';

// Issue 10, items 1 and 9: readiness and certificate expiry become alarms, from the sidecars'
// structured log lines (the container health checks test liveness only).
let t: Template;

beforeAll(() => {
  const edge = buildEdgeApp(parseDeploymentConfig(exampleConfig()), {
    nag: false,
    images: registryImages(),
    appProps: { context: cdkContext() },
  });
  const stack = edge.regions.find((s) => s.region === 'eu-west-1');
  if (!stack) throw new Error('no eu-west-1 stack');
  t = Template.fromStack(stack);
});

const filterOn = (event: string, metricName: string, logGroupRef: RegExp) => {
  const filters = Object.values(t.findResources('AWS::Logs::MetricFilter')).filter(
    (r) => r.Properties.FilterPattern === `{ $.event = "${event}" }`,
  );
  expect(filters).toHaveLength(1);
  const p = filters[0]?.Properties;
  expect(p.MetricTransformations).toEqual([
    { MetricName: metricName, MetricNamespace: 'Edge/edge', MetricValue: '1' },
  ]);
  expect(p.LogGroupName.Ref).toMatch(logGroupRef);
};

describe('alarms from the sidecars', () => {
  it('counts the issuer’s cert_expiring, cert_expired and renewal_failed lines from its log group', () => {
    filterOn('cert_expiring', 'CertificatesExpiring', /^TaskLogsissuer/);
    filterOn('cert_expired', 'ExpiredCertificates', /^TaskLogsissuer/);
    filterOn('renewal_failed', 'RenewalFailures', /^TaskLogsissuer/);
  });

  it('counts the issuer’s renewal_attempt and budget_low lines from its log group', () => {
    filterOn('renewal_attempt', 'RenewalAttempts', /^TaskLogsissuer/);
    filterOn('budget_low', 'BudgetLow', /^TaskLogsissuer/);
  });

  it('alarms on any budget_low line in 2 h (Let’s Encrypt headroom)', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: "eu-west-1: Let's Encrypt issuance budget headroom low",
      MetricName: 'BudgetLow',
      Namespace: 'Edge/edge',
      Statistic: 'Sum',
      Period: 7200,
      Threshold: 1,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [Match.anyValue()],
    });
  });

  it('alarms on the renewal failure rate: metric math over failed and tried renewals in 6 h', () => {
    const alarms = Object.values(t.findResources('AWS::CloudWatch::Alarm')).filter(
      (r) => r.Properties.AlarmDescription === 'eu-west-1: share of certificate renewal orders failing',
    );
    expect(alarms).toHaveLength(1);
    const p = alarms[0]?.Properties;
    expect(p).toMatchObject({
      Threshold: 50,
      EvaluationPeriods: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
    expect(p.AlarmActions).toHaveLength(1);
    expect(p.MetricName).toBeUndefined();
    const byId = Object.fromEntries(
      (p.Metrics as { Id: string }[]).map((m) => [m.Id, m as Record<string, unknown>]),
    );
    expect(Object.keys(byId).sort()).toEqual(['attempts', 'expr_1', 'failures']);
    expect(byId.expr_1).toMatchObject({
      Expression: 'IF(attempts > 0, 100 * FILL(failures, 0) / attempts)',
      ReturnData: true,
    });
    for (const [id, name] of [
      ['failures', 'RenewalFailures'],
      ['attempts', 'RenewalAttempts'],
    ] as const) {
      expect(byId[id]).toMatchObject({
        ReturnData: false,
        MetricStat: {
          Metric: { MetricName: name, Namespace: 'Edge/edge' },
          Period: 21600,
          Stat: 'Sum',
        },
      });
    }
  });

  it('counts the sqs-listener’s listener_not_ready lines from its log group', () => {
    filterOn('listener_not_ready', 'ListenerNotReady', /^TaskLogssqslistener/);
  });

  it('alarms on any expiring or expired certificate (2 h), repeated renewal failures (6 h) and a task not ready for 2 of 3 five-minute periods', () => {
    const alarm = (metricName: string, props: Record<string, unknown>) =>
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metricName,
        Namespace: 'Edge/edge',
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [Match.anyValue()],
        OKActions: [Match.anyValue()],
        ...props,
      });
    alarm('CertificatesExpiring', { Period: 7200, Threshold: 1, EvaluationPeriods: 1 });
    alarm('ExpiredCertificates', { Period: 7200, Threshold: 1, EvaluationPeriods: 1 });
    alarm('RenewalFailures', { Period: 21600, Threshold: 3, EvaluationPeriods: 1 });
    alarm('ListenerNotReady', { Period: 300, Threshold: 1, EvaluationPeriods: 3, DatapointsToAlarm: 2 });
  });
});
