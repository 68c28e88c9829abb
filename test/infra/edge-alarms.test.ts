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
