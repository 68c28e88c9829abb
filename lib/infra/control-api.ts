import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge } from './nag.ts';

const ENTRY = fileURLToPath(new URL('../control/api/lambda.ts', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ControlApiProps {
  /** The state table the control plane writes (home region). */
  readonly table: dynamodb.ITableV2;
  /** The control-event topic it publishes to. */
  readonly topic: sns.ITopic;
  /** The topic's customer-managed key: publishing to an encrypted topic needs it, through SNS only. */
  readonly topicKey: kms.IKey;
  /** The edge hostname custom domains CNAME to (the DNS check and the routing records shown). */
  readonly edgeHostname: string;
  /** The zone tenants delegate `_acme-challenge.<domain>` into; shown as the optional challenge CNAME. */
  readonly challengeZone: string;
  /**
   * How often the deployment's one ownership re-check runs (every domain refreshed; moved_away
   * and failed ones logged as `domain needs attention`, never suspended). Default: 1 hour.
   */
  readonly recheckInterval?: Duration;
  /**
   * Where the "domains need attention" alarm (a re-check found domains moved away or failed)
   * sends ALARM and OK. Default: no notification (the alarm still shows in CloudWatch).
   */
  readonly alarmTopic?: sns.ITopic;
  /** Requests per second the API takes before it answers 429. Default: 50 (burst 100). */
  readonly rateLimitPerSecond?: number;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The control API on AWS: an HTTP API with IAM (SigV4) authorization in front of one Lambda
 * running the same handler as the local server (lib/control/api/lambda.ts), and an EventBridge
 * schedule invoking that Lambda for the periodic ownership re-check: one scheduler for the
 * deployment. `/openapi.json` is the only route without authorization. Callers need
 * `execute-api:Invoke` on the API (`grantInvoke`).
 */
export class ControlApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly function: nodejs.NodejsFunction;
  readonly schedule: events.Rule;
  /** Domains the last re-checks marked moved_away or failed: never suspended, so a person looks. */
  readonly attentionAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ControlApiProps) {
    super(scope, id);
    const interval = props.recheckInterval ?? Duration.hours(1);
    if (interval.toMinutes({ integral: false }) < 5) {
      throw new Error(`recheckInterval must be at least 5 minutes, got ${interval.toHumanString()}`);
    }
    const rate = props.rateLimitPerSecond ?? 50;
    if (!Number.isInteger(rate) || rate < 1) {
      throw new Error(`rateLimitPerSecond must be a positive integer, got ${rate}`);
    }
    const stack = Stack.of(this);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role: no managed policy, only what the control plane's operations call.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'The control API and the ownership re-check: table items, publish events, own logs',
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'TableItems',
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Scan'],
        resources: [props.table.tableArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PublishEvents',
        actions: ['sns:Publish'],
        resources: [props.topic.topicArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'TopicKeyThroughSns',
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [props.topicKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `sns.${stack.region}.amazonaws.com` } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      role,
      logGroup,
      memorySize: 512,
      // The re-check walks every domain (DNS lookups); API Gateway itself gives up after 30 s.
      timeout: Duration.minutes(5),
      description: 'Edge control API (HTTP API, IAM auth) and the periodic ownership re-check',
      environment: {
        EDGE_TABLE_NAME: props.table.tableName,
        EDGE_BUS: 'aws',
        EDGE_SNS_TOPIC_ARN: props.topic.topicArn,
        EDGE_DNS_CNAME: props.edgeHostname,
        EDGE_DNS01_CHALLENGE_ZONE: props.challengeZone,
      },
      bundling: {
        // esbuild from node_modules, never a Docker image.
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        // CommonJS dependencies call require(): give the ESM bundle one.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The runtime's own SDK would be whatever version AWS ships: bundle the tested one.
        externalModules: [],
      },
    });
    this.function.node.addDependency(role);

    const integration = new HttpLambdaIntegration('Integration', this.function);
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'Edge control API: tenants, domains, purges (SigV4, IAM)',
      defaultAuthorizer: new HttpIamAuthorizer(),
    });
    this.api.addRoutes({ path: '/{proxy+}', methods: [apigwv2.HttpMethod.ANY], integration });
    // The API's description is public, as the local server's is.
    this.api.addRoutes({
      path: '/openapi.json',
      methods: [apigwv2.HttpMethod.GET],
      integration,
      authorizer: new apigwv2.HttpNoneAuthorizer(),
    });
    const stage = this.api.defaultStage?.node.defaultChild as apigwv2.CfnStage;
    stage.accessLogSettings = {
      destinationArn: accessLogs.logGroupArn,
      format: JSON.stringify({
        requestId: '$context.requestId',
        ip: '$context.identity.sourceIp',
        caller: '$context.identity.caller',
        user: '$context.identity.userArn',
        time: '$context.requestTimeEpoch',
        method: '$context.httpMethod',
        path: '$context.path',
        status: '$context.status',
        latencyMs: '$context.responseLatency',
        error: '$context.integrationErrorMessage',
      }),
    };
    stage.defaultRouteSettings = { throttlingRateLimit: rate, throttlingBurstLimit: rate * 2 };

    this.schedule = new events.Rule(this, 'Recheck', {
      description: 'The deployment’s one periodic ownership re-check of every custom domain',
      schedule: events.Schedule.rate(interval),
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
    });

    // The function logs one `domain needs attention` line per such domain (console output carries
    // the runtime's prefix, so a phrase filter, not a JSON one).
    const attention = new logs.MetricFilter(this, 'AttentionFilter', {
      logGroup,
      filterPattern: logs.FilterPattern.allTerms('domain needs attention'),
      metricNamespace: 'Edge/ControlPlane',
      metricName: 'DomainsNeedingAttention',
      metricValue: '1',
    });
    this.attentionAlarm = attention
      .metric({ statistic: 'Sum', period: interval.toSeconds() > 86_400 ? Duration.days(1) : interval })
      .createAlarm(this, 'AttentionAlarm', {
        alarmDescription:
          'The ownership re-check found custom domains that no longer point at the edge and no longer prove ownership, or failed: they keep being served; look at the re-check log lines',
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    if (props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(props.alarmTopic);
      this.attentionAlarm.addAlarmAction(action);
      this.attentionAlarm.addOkAction(action);
    }

    acknowledge(this.api, [
      {
        id: 'AwsSolutions-APIG4',
        reason:
          'Every route uses IAM (SigV4) authorization except GET /openapi.json, the public description of the API.',
      },
      {
        id: 'AwsSolutions-COG4',
        reason: 'Callers are SaaS backends with IAM credentials (SigV4), not Cognito users.',
      },
    ]);
  }

  /** Lets a backend's role or user call the API (SigV4 with its credentials). */
  grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [this.api.arnForExecuteApi()],
    });
  }
}
