import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface EdgeAlarmsProps {
  readonly region: string;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly httpsTargetGroup: elbv2.NetworkTargetGroup;
  readonly service: ecs.FargateService;
  readonly deadLetterQueue: sqs.IQueue;
  /** The `edge` container's log group: JSON access log on stdout, JSON events in the error log. */
  readonly edgeLogGroup: logs.ILogGroup;
  readonly connectionsPerTask: cloudwatch.IMetric;
  /** Every alarm notifies this topic on ALARM and on OK. Default: no notification. */
  readonly actionTopic?: sns.ITopic;
  /** Namespace of the log-derived metrics. Default: `Edge`. */
  readonly metricNamespace?: string;
  /** Sampled fallback lines per minute (worker-intervals of 10 s with fallbacks), two minutes running, before alarming. Default: 3. */
  readonly fallbackCertificateThreshold?: number;
  /** Share of 5xx responses (percent) over 5 minutes before alarming. Default: 5. */
  readonly serverErrorPercentThreshold?: number;
  /**
   * The `issuer` container's log group: its renewal pass logs `cert_expiring`, `cert_expired` and
   * `renewal_failed` lines, which become the certificate alarms. Default: no certificate alarms.
   */
  readonly issuerLogGroup?: logs.ILogGroup;
  /**
   * The `sqs-listener` container's log group: it logs `listener_not_ready` (at most once a minute)
   * while it cannot do its job (Redis not bootstrapped, bus or table unreachable), which becomes the
   * readiness alarm (the container health check tests liveness only). Default: no readiness alarm.
   */
  readonly sqsListenerLogGroup?: logs.ILogGroup;
  /** Failed renewals per 6 hours before alarming. Default: 3. */
  readonly renewalFailureThreshold?: number;
  /**
   * Failed / tried renewals (percent) over 6 hours before alarming, from the issuer's
   * `renewal_failed` and `renewal_attempt` lines. Default: 50.
   */
  readonly renewalFailureRatePercent?: number;
}

type CoreAlarm = 'unhealthyTargets' | 'deadLetters' | 'fallbackCertificates' | 'serverErrors';
type TaskAlarm =
  | 'certificatesExpiring'
  | 'expiredCertificates'
  | 'renewalFailures'
  | 'renewalFailureRate'
  | 'budgetLow'
  | 'listenerNotReady';

/**
 * One region's alarms and dashboard. The NLB passes TCP through, so HTTP status and certificate
 * outcomes come from the edge's own logs through metric filters.
 */
export class EdgeAlarms extends Construct {
  readonly alarms: Record<CoreAlarm, cloudwatch.Alarm> & Partial<Record<TaskAlarm, cloudwatch.Alarm>>;
  readonly dashboard: cloudwatch.Dashboard;

  private readonly metricNamespace: string;

  constructor(scope: Construct, id: string, props: EdgeAlarmsProps) {
    super(scope, id);
    this.metricNamespace = props.metricNamespace ?? 'Edge';
    const fiveMinutes = Duration.minutes(5);

    const requests = this.logMetric(props.edgeLogGroup, 'Requests', logs.FilterPattern.exists('$.status'));
    const serverErrors = this.logMetric(
      props.edgeLogGroup,
      'ServerErrors',
      logs.FilterPattern.numberValue('$.status', '>=', 500),
    );
    // The TLS code logs {"event":"cert_fallback","count":n,...} sampled: at most one line per worker
    // per 10 s, when that worker served a fallback. nginx prefixes error-log lines with its date and
    // level, so a JSON filter (and `$.count`) cannot match them: the metric counts the sampled lines,
    // that is worker-intervals in which handshakes got the fallback certificate.
    const fallbacks = this.logMetric(
      props.edgeLogGroup,
      'FallbackCertificates',
      logs.FilterPattern.allTerms('cert_fallback'),
    );

    const unhealthy = props.httpsTargetGroup.metrics.unHealthyHostCount({
      statistic: 'Maximum',
      period: Duration.minutes(1),
    });
    const healthy = props.httpsTargetGroup.metrics.healthyHostCount({
      statistic: 'Minimum',
      period: Duration.minutes(1),
    });
    const dlqDepth = props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      statistic: 'Maximum',
      period: fiveMinutes,
    });
    const errorRate = new cloudwatch.MathExpression({
      expression: '100 * errors / IF(requests > 0, requests, 1)',
      usingMetrics: {
        errors: serverErrors.with({ period: fiveMinutes }),
        requests: requests.with({ period: fiveMinutes }),
      },
      label: '5xx %',
      period: fiveMinutes,
    });

    this.alarms = {
      unhealthyTargets: unhealthy.createAlarm(this, 'UnhealthyTargets', {
        alarmDescription: `${props.region}: edge tasks failing the NLB health check`,
        threshold: 1,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      deadLetters: dlqDepth.createAlarm(this, 'DeadLetters', {
        alarmDescription: `${props.region}: events in the dead-letter queue`,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      fallbackCertificates: fallbacks
        .with({ period: fiveMinutes, statistic: 'Sum' })
        .createAlarm(this, 'FallbackCertificates', {
          alarmDescription: `${props.region}: handshakes answered with the fallback certificate`,
          threshold: props.fallbackCertificateThreshold ?? 3,
          evaluationPeriods: 2,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      serverErrors: errorRate.createAlarm(this, 'ServerErrors', {
        alarmDescription: `${props.region}: share of 5xx responses`,
        threshold: props.serverErrorPercentThreshold ?? 5,
        evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    };

    Object.assign(this.alarms, this.taskAlarms(props));

    if (props.actionTopic) {
      const action = new cwActions.SnsAction(props.actionTopic);
      for (const alarm of Object.values(this.alarms)) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    const nlb = props.loadBalancer.metrics;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Connections',
            left: [nlb.activeFlowCount(), nlb.newFlowCount()],
            right: [props.connectionsPerTask],
          }),
          new cloudwatch.GraphWidget({ title: 'Bytes', left: [nlb.processedBytes()] }),
          new cloudwatch.GraphWidget({ title: 'Targets', left: [healthy, unhealthy] }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Service',
            left: [props.service.metricCpuUtilization(), props.service.metricMemoryUtilization()],
          }),
          new cloudwatch.GraphWidget({ title: 'Requests and 5xx %', left: [requests], right: [errorRate] }),
          new cloudwatch.GraphWidget({
            title: 'Fallback certificates and dead letters',
            left: [fallbacks],
            right: [dlqDepth],
          }),
        ],
        [
          new cloudwatch.AlarmStatusWidget({
            title: 'Alarms',
            alarms: Object.values(this.alarms),
            width: 24,
          }),
        ],
      ],
    });
  }

  /** Alarms from the sidecars' structured log lines (each only when its log group is given). */
  private taskAlarms(props: EdgeAlarmsProps): Partial<Record<TaskAlarm, cloudwatch.Alarm>> {
    const out: Partial<Record<TaskAlarm, cloudwatch.Alarm>> = {};
    const atLeastOnce = {
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    const issuer = props.issuerLogGroup;
    if (issuer) {
      // The renewal pass runs hourly by default: a two-hour period always holds one.
      const twoHours = Duration.hours(2);
      const event = (name: string) => logs.FilterPattern.stringValue('$.event', '=', name);
      out.certificatesExpiring = this.logMetric(issuer, 'CertificatesExpiring', event('cert_expiring'))
        .with({ period: twoHours, statistic: 'Sum' })
        .createAlarm(this, 'CertificatesExpiring', {
          alarmDescription: `${props.region}: certificates close to expiry with no renewal in progress`,
          threshold: 1,
          ...atLeastOnce,
        });
      out.expiredCertificates = this.logMetric(issuer, 'ExpiredCertificates', event('cert_expired'))
        .with({ period: twoHours, statistic: 'Sum' })
        .createAlarm(this, 'ExpiredCertificates', {
          alarmDescription: `${props.region}: expired certificates still served`,
          threshold: 1,
          ...atLeastOnce,
        });
      const sixHours = Duration.hours(6);
      const failures = this.logMetric(issuer, 'RenewalFailures', event('renewal_failed')).with({
        period: sixHours,
        statistic: 'Sum',
      });
      out.renewalFailures = failures.createAlarm(this, 'RenewalFailures', {
        alarmDescription: `${props.region}: certificate renewals failing`,
        threshold: props.renewalFailureThreshold ?? 3,
        ...atLeastOnce,
      });
      // The rate: failed over tried renewal orders in the same 6 hours (no attempt: no data).
      const attempts = this.logMetric(issuer, 'RenewalAttempts', event('renewal_attempt')).with({
        period: sixHours,
        statistic: 'Sum',
      });
      out.renewalFailureRate = new cloudwatch.MathExpression({
        expression: 'IF(attempts > 0, 100 * FILL(failures, 0) / attempts)',
        usingMetrics: { failures, attempts },
        period: sixHours,
        label: 'Renewal failure rate (%)',
      }).createAlarm(this, 'RenewalFailureRate', {
        alarmDescription: `${props.region}: share of certificate renewal orders failing`,
        threshold: props.renewalFailureRatePercent ?? 50,
        ...atLeastOnce,
      });
      // The issuer logs budget_low after each renewal pass while a Let's Encrypt limit (orders per
      // account per 3 h, certificates per registered domain per week) is at or below its low share.
      out.budgetLow = this.logMetric(issuer, 'BudgetLow', event('budget_low'))
        .with({ period: twoHours, statistic: 'Sum' })
        .createAlarm(this, 'BudgetLow', {
          alarmDescription: `${props.region}: Let's Encrypt issuance budget headroom low`,
          threshold: 1,
          ...atLeastOnce,
        });
    }
    const listener = props.sqsListenerLogGroup;
    if (listener) {
      out.listenerNotReady = this.logMetric(
        listener,
        'ListenerNotReady',
        logs.FilterPattern.stringValue('$.event', '=', 'listener_not_ready'),
      )
        .with({ period: Duration.minutes(5), statistic: 'Sum' })
        .createAlarm(this, 'ListenerNotReady', {
          alarmDescription: `${props.region}: tasks not ready (Redis not bootstrapped, bus or table unreachable)`,
          threshold: 1,
          evaluationPeriods: 3,
          datapointsToAlarm: 2,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
    }
    return out;
  }

  private logMetric(
    logGroup: logs.ILogGroup,
    metricName: string,
    filterPattern: logs.IFilterPattern,
    metricValue = '1',
  ) {
    const filter = new logs.MetricFilter(this, `${metricName}Filter`, {
      logGroup,
      filterPattern,
      metricNamespace: this.metricNamespace,
      metricName,
      metricValue,
    });
    return filter.metric({ statistic: 'Sum', period: Duration.minutes(1), dimensionsMap: {} });
  }
}
