import type { SqsListener } from './service.ts';

const label = (v: string) => v.replace(/["\\\n]/g, '_');

/** The sqs-listener's /metrics (Prometheus text): readiness by part, bootstraps, events, the bus. */
export function listenerMetrics(listener: SqsListener, stats = listener.bus.stats): string {
  const r = listener.readiness();
  const c = listener.counters;
  const lines = [
    '# HELP edge_listener_ready 1 when the task can do its job now (redis bootstrapped, bus delivering, table reachable).',
    '# TYPE edge_listener_ready gauge',
    `edge_listener_ready ${r.ready ? 1 : 0}`,
    '# TYPE edge_listener_part_ready gauge',
    `edge_listener_part_ready{part="redis"} ${r.redis ? 1 : 0}`,
    `edge_listener_part_ready{part="bus"} ${r.bus ? 1 : 0}`,
    `edge_listener_part_ready{part="table"} ${r.table ? 1 : 0}`,
    '# HELP edge_listener_bootstraps_total Bootstraps of the task redis from the table, by reason.',
    '# TYPE edge_listener_bootstraps_total counter',
    ...[...c.bootstraps].map(
      ([reason, n]) => `edge_listener_bootstraps_total{reason="${label(reason)}"} ${n}`,
    ),
    '# TYPE edge_listener_bootstrap_failures_total counter',
    `edge_listener_bootstrap_failures_total ${c.bootstrapFailures}`,
    '# TYPE edge_listener_events_total counter',
    ...[...c.events].map(([result, n]) => `edge_listener_events_total{result="${label(result)}"} ${n}`),
    '# HELP edge_listener_events_ignored_total Events of a type this version does not know (acknowledged).',
    '# TYPE edge_listener_events_ignored_total counter',
    ...[...stats.ignoredByType].map(
      ([type, n]) => `edge_listener_events_ignored_total{type="${label(type)}"} ${n}`,
    ),
    '# TYPE edge_listener_dead_letters_total counter',
    `edge_listener_dead_letters_total ${stats.deadLettered}`,
    '# HELP edge_listener_resubscribed_total Times the subscription was lost and recreated.',
    '# TYPE edge_listener_resubscribed_total counter',
    `edge_listener_resubscribed_total ${stats.resubscribed}`,
  ];
  return `${lines.join('\n')}\n`;
}
