import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ControlApi, type ControlApiProps } from '../../lib/infra/control-api.ts';
import { cdkContext } from './fixtures.ts';

const ENV = { account: '123456789012', region: 'eu-west-1' };

function build(
  props: Partial<ControlApiProps> = {},
  context: Record<string, unknown> = cdkContext(),
  outdir?: string,
): { app: App; stack: Stack; api: ControlApi } {
  const app = new App({ context, ...(outdir ? { outdir } : {}) });
  const stack = new Stack(app, 'Global', { env: ENV });
  const key = new kms.Key(stack, 'TopicKey', { enableKeyRotation: true });
  const table = new dynamodb.TableV2(stack, 'Table', {
    partitionKey: { name: 'PK', type: dynamodb.AttributeType.STRING },
    sortKey: { name: 'SK', type: dynamodb.AttributeType.STRING },
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  });
  const api = new ControlApi(stack, 'ControlApi', {
    table,
    topic: new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true }),
    topicKey: key,
    edgeHostname: 'edge.platform.example',
    challengeZone: 'acme-delegation.platform.example',
    logRetention: logs.RetentionDays.ONE_MONTH,
    ...props,
  });
  return { app, stack, api };
}

let t: Template;
let built: ReturnType<typeof build>;
beforeAll(() => {
  built = build();
  t = Template.fromStack(built.stack);
});

describe('ControlApi', () => {
  it('is an HTTP API with IAM authorization on every route but GET /openapi.json', () => {
    t.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'ANY /{proxy+}',
      AuthorizationType: 'AWS_IAM',
    });
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /openapi.json',
      AuthorizationType: 'NONE',
    });
    t.resourceCountIs('AWS::ApiGatewayV2::Route', 2);
  });

  it('logs every request and throttles at the stage', () => {
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('sourceIp') },
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('runs the handler on Node 24 with the CLI settings of the table, the topic and the DNS', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Environment: {
        Variables: {
          EDGE_TABLE_NAME: Match.anyValue(),
          EDGE_BUS: 'aws',
          EDGE_SNS_TOPIC_ARN: { Ref: Match.stringLikeRegexp('^Topic') },
          EDGE_DNS_CNAME: 'edge.platform.example',
          EDGE_DNS01_CHALLENGE_ZONE: 'acme-delegation.platform.example',
        },
      },
    });
  });

  it('invokes the same function on one schedule for the re-check (hourly by default)', () => {
    t.resourceCountIs('AWS::Events::Rule', 1);
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('ControlApiFunction'), 'Arn'] } }),
      ],
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
    });
  });

  it('alarms when a re-check finds domains needing attention, to the alarm topic when given', () => {
    t.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '"domain needs attention"',
      MetricTransformations: [
        Match.objectLike({ MetricName: 'DomainsNeedingAttention', MetricNamespace: 'Edge/ControlPlane' }),
      ],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DomainsNeedingAttention',
      Period: 3600,
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    const withTopic = build({
      alarmTopic: sns.Topic.fromTopicArn(
        new Stack(new App(), 'Other', { env: ENV }),
        'Alarms',
        'arn:aws:sns:eu-west-1:123456789012:edge-alarms',
      ),
    });
    Template.fromStack(withTopic.stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DomainsNeedingAttention',
      AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:edge-alarms'],
      OKActions: ['arn:aws:sns:eu-west-1:123456789012:edge-alarms'],
    });
  });

  it('grants only the table items, publishing, the topic key through SNS and its own logs', () => {
    const policies = Object.values(t.findResources('AWS::IAM::Policy'));
    expect(policies).toHaveLength(1);
    const statements = (policies[0]?.Properties.PolicyDocument.Statement ?? []) as {
      Sid?: string;
      Action: string | string[];
      Condition?: unknown;
    }[];
    expect(statements.map((s) => [s.Sid, s.Action])).toEqual([
      ['TableItems', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan', 'dynamodb:UpdateItem']],
      ['PublishEvents', 'sns:Publish'],
      ['TopicKeyThroughSns', ['kms:Decrypt', 'kms:GenerateDataKey']],
      ['OwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents']],
    ]);
    expect(statements[2]?.Condition).toEqual({
      StringEquals: { 'kms:ViaService': 'sns.eu-west-1.amazonaws.com' },
    });
    t.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });

  it('grantInvoke gives execute-api:Invoke on this API only', () => {
    const { stack, api } = build();
    const backend = new iam.Role(stack, 'Backend', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(backend);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^Backend') }],
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: 'execute-api:Invoke',
            Resource: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
          }),
        ],
      },
    });
  });

  it('passes cdk-nag AwsSolutions with zero unacknowledged findings', () => {
    const report = new AwsSolutionsChecks(built.app).validateScope(built.app);
    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources[0]?.constructPath}`)).toEqual(
      [],
    );
  });

  it('refuses a re-check more often than every 5 minutes and a rate limit below 1', () => {
    expect(() => build({ recheckInterval: Duration.minutes(1) })).toThrow(
      'recheckInterval must be at least 5 minutes, got 1 minute',
    );
    expect(() => build({ rateLimitPerSecond: 0 })).toThrow(
      'rateLimitPerSecond must be a positive integer, got 0',
    );
  });

  it('bundles the handler with esbuild from node_modules, without Docker, into a bundle that runs', async () => {
    const outdir = mkdtempSync(join(tmpdir(), 'edge-control-api-'));
    try {
      const { app } = build({}, { ...cdkContext(), 'aws:cdk:bundling-stacks': ['**'] }, outdir);
      app.synth();
      const bundles = readdirSync(outdir).filter((d) => d.startsWith('asset.'));
      expect(bundles).toHaveLength(1);
      const bundle = join(outdir, bundles[0] as string, 'index.mjs');
      expect(existsSync(bundle)).toBe(true);
      // The bundle runs as Lambda would run it: the OpenAPI document needs no AWS call.
      const saved = { ...process.env };
      Object.assign(process.env, {
        EDGE_TABLE_NAME: 'edge-state',
        EDGE_BUS: 'aws',
        EDGE_SNS_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:edge-events',
        AWS_REGION: 'eu-west-1',
      });
      try {
        const { handler } = (await import(pathToFileURL(bundle).href)) as {
          handler: (e: unknown) => Promise<{ statusCode: number; body: string }>;
        };
        const res = await handler({
          version: '2.0',
          rawPath: '/openapi.json',
          requestContext: { http: { method: 'GET' } },
        });
        expect(res.statusCode).toBe(200);
        expect(JSON.parse(res.body)).toMatchObject({ openapi: '3.1.0' });
      } finally {
        process.env = saved;
      }
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
