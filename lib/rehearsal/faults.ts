import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteQueueCommand, ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { ControlPlane } from '../control/control-plane.ts';
import { edgeGet } from './checks/edge-client.ts';
import type { HostServices } from './host-services.ts';
import type { CheckReport } from './report.ts';
import { CONTROL_PLANE_ACCESS_KEY } from './seed.ts';
import type { StopResult, TaskAgent } from './task-agent.ts';
import type { TaskDefinition } from './task-definition.ts';

/**
 * `rehearse --faults`: the faults AWS produces, against the running task (issue 10, item 8).
 * (a) the bus, DynamoDB and KMS unavailable for a while under steady load on known domains:
 * task replacements (what the agent's ECS model would act on) and failed requests, target 0 and 0;
 * (c) the live task queue deleted: the sqs-listener recreates and resubscribes it, a later purge
 * arrives; (b+d) the task replaced under load while KMS throttles a share of calls: two new
 * tasks bootstrap at once (a storm), the NLB stand-in moves to them, the old task drains.
 */
export interface FaultOptions {
  /** How long the bus, DynamoDB and KMS stay unavailable; default 600 (10 minutes). */
  readonly outageSeconds: number;
  /** Share of the task's KMS calls answered ThrottlingException during the bootstrap storm; default 0.5. */
  readonly kmsThrottleFraction: number;
}

export const FAULT_CHECKS = {
  outage: 'faults: bus, DynamoDB and KMS unavailable under load: 0 replacements, 0 failed requests',
  queueDeleted: 'faults: live task queue deleted: recreated, resubscribed, a later purge arrives',
  replaced: 'faults: task replaced under load during a KMS-throttled bootstrap storm of two tasks',
} as const;

/** A task the rehearsal started: its agent and address on the pod network. */
export interface StartedTask {
  readonly agent: TaskAgent;
  readonly address: string;
}

export interface FaultContext {
  readonly report: CheckReport;
  readonly host: HostServices;
  readonly td: TaskDefinition;
  readonly region: string;
  readonly ca: string;
  readonly control: ControlPlane;
  readonly tenant: string;
  readonly originPurgeFile: string;
  /** Requests the load sends, each with the text its body must contain. */
  readonly known: readonly { host: string; path: string; expect: string }[];
  readonly purgeHost: string;
  /** Creates and starts another task from the same definition (its containers created, not started). */
  readonly newTask: (label: string) => Promise<StartedTask>;
  readonly startTimeoutMs: number;
  readonly log: (line: string) => void;
}

/** Steady HTTPS load through the NLB stand-in; every answer that is not the tenant's page counts as failed. */
class Load {
  ok = 0;
  failed = 0;
  private readonly reasons = new Map<string, number>();
  private running = true;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly port: number,
    private readonly ca: string,
    private readonly known: FaultContext['known'],
    concurrency = 3,
  ) {
    for (let w = 0; w < concurrency; w++) this.workers.push(this.work(w));
  }

  private async work(w: number): Promise<void> {
    for (let i = w; this.running; i++) {
      const k = this.known[i % this.known.length] as FaultContext['known'][number];
      const why = await edgeGet({
        port: this.port,
        host: k.host,
        path: k.path,
        ca: this.ca,
        timeoutMs: 10_000,
      })
        .then((r) =>
          r.status !== 200
            ? `${k.host} ${r.status}`
            : !r.verified
              ? `${k.host} certificate: ${r.verifyError}`
              : !r.body.includes(k.expect)
                ? `${k.host} wrong body`
                : undefined,
        )
        .catch((err: Error) => `${k.host} ${err.message}`);
      if (why === undefined) this.ok += 1;
      else {
        this.failed += 1;
        this.reasons.set(why, (this.reasons.get(why) ?? 0) + 1);
      }
      await sleep(100);
    }
  }

  async stop(): Promise<string> {
    this.running = false;
    await Promise.all(this.workers);
    const top = [...this.reasons]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([r, n]) => `${n}× ${r}`);
    return `${this.ok + this.failed} requests, ${this.failed} failed${top.length ? ` (${top.join('; ')})` : ''}`;
  }
}

/** What the ECS model of the agent would count as a replacement, or a step towards one. */
function replacements(agent: TaskAgent, containers: readonly string[]) {
  const restarts = containers.reduce((n, c) => n + agent.restarts(c), 0);
  return { stopped: agent.stoppedBecause, unhealthy: agent.unhealthyTransitions, restarts };
}

function pebbleOrders(host: HostServices): number {
  return readFileSync(host.pebble.logFile, 'utf8')
    .split('\n')
    .filter((l) => /Added order "/.test(l)).length;
}

/** A purge of the tenant, then requests until every registered task answers MISS with the new content. */
async function purgeArrives(c: FaultContext, version: string, timeoutMs: number): Promise<number> {
  const get = () => edgeGet({ port: c.host.nlb.httpsPort, host: c.purgeHost, path: '/purge.txt', ca: c.ca });
  // Warm every task behind the NLB (round robin) with the old copy first.
  for (let i = 0; i < 4; i++) await get();
  writeFileSync(c.originPurgeFile, `${version}\n`);
  const t0 = Date.now();
  await c.control.purge(c.tenant, { scope: 'tenant' });
  let fresh = 0;
  while (Date.now() - t0 < timeoutMs) {
    const r = await get().catch(() => undefined);
    // Several fresh answers in a row: every task behind the round robin saw the purge.
    fresh = r?.body.includes(version) ? fresh + 1 : 0;
    if (fresh >= 4) return (Date.now() - t0) / 1000;
    await sleep(250);
  }
  throw new Error(`the purge (${version}) was not served within ${timeoutMs / 1000} s`);
}

export async function faultChecks(
  c: FaultContext,
  opts: FaultOptions,
  current: StartedTask,
): Promise<{ current: StartedTask; retired: StartedTask[] }> {
  const names = c.td.containers.map((x) => x.name);
  const retired: StartedTask[] = [];
  let task = current;
  const https = c.host.nlb.httpsPort;

  // (a) The bus, DynamoDB and KMS unavailable for the task.
  await c.report.check(FAULT_CHECKS.outage, async () => {
    const before = replacements(task.agent, names);
    const load = new Load(https, c.ca, c.known);
    await sleep(2000);
    c.host.aws.setFault({
      services: ['sns', 'sqs', 'dynamodb', 'kms'],
      kind: 'unavailable',
      principal: 'task',
    });
    c.log(`outage: SNS, SQS, DynamoDB and KMS answer 503 to the task for ${opts.outageSeconds} s`);
    const t0 = Date.now();
    while (Date.now() - t0 < opts.outageSeconds * 1000) {
      await sleep(Math.min(30_000, opts.outageSeconds * 1000 - (Date.now() - t0)));
      c.log(
        `  outage ${((Date.now() - t0) / 1000).toFixed(0)} s: ${load.ok} ok, ${load.failed} failed so far`,
      );
    }
    c.host.aws.setFault(undefined);
    const faulted = { ...c.host.aws.faulted };
    await sleep(5000);
    const loadLine = await load.stop();
    const after = replacements(task.agent, names);
    const replaced = after.stopped !== undefined && before.stopped === undefined;
    const unhealthy = after.unhealthy - before.unhealthy;
    const restarts = after.restarts - before.restarts;
    const purgeSeconds = await purgeArrives(c, 'version outage', 90_000).catch((err: Error) => err);
    const line =
      `${opts.outageSeconds} s outage (${Object.entries(faulted)
        .map(([s, n]) => `${s} ${n}`)
        .join(
          ', ',
        )} calls failed): ${replaced ? 1 : 0} task replacements (${unhealthy} health checks turned UNHEALTHY, ${restarts} container restarts), ${loadLine}; ` +
      (purgeSeconds instanceof Error
        ? purgeSeconds.message
        : `a purge after it served in ${purgeSeconds.toFixed(1)} s`);
    if (replaced || unhealthy > 0 || restarts > 0 || load.failed > 0 || purgeSeconds instanceof Error)
      throw new Error(`${line}${after.stopped ? `; ${after.stopped}` : ''}`);
    return line;
  });

  // (c) The live task queue deleted (the sweeper of another task, or a person).
  await c.report.check(FAULT_CHECKS.queueDeleted, async () => {
    const prefix = c.td.containers.find((x) => x.name === 'sqs-listener')?.environment.EDGE_QUEUE_NAME_PREFIX;
    if (!prefix) throw new Error('the sqs-listener has no EDGE_QUEUE_NAME_PREFIX');
    const sqs = new SQSClient({
      region: c.region,
      endpoint: c.host.awsUrlOnHost,
      credentials: { accessKeyId: CONTROL_PLANE_ACCESS_KEY, secretAccessKey: 'rehearsal' },
    });
    try {
      const list = async () =>
        (await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }))).QueueUrls ?? [];
      const live = await list();
      if (live.length === 0) throw new Error(`no queue named ${prefix}* to delete`);
      for (const url of live) await sqs.send(new DeleteQueueCommand({ QueueUrl: url }));
      const t0 = Date.now();
      let recreated: string[] = [];
      while (Date.now() - t0 < 90_000 && recreated.length === 0) {
        await sleep(1000);
        recreated = (await list()).filter((u) => !live.includes(u));
      }
      if (recreated.length === 0)
        throw new Error(
          `deleted ${live.map((u) => u.split('/').pop()).join(', ')}; no queue recreated within 90 s`,
        );
      const recreateSeconds = (Date.now() - t0) / 1000;
      const purgeSeconds = await purgeArrives(c, 'version queue', 60_000);
      return `deleted ${live.map((u) => u.split('/').pop()).join(', ')}; ${recreated.map((u) => u.split('/').pop()).join(', ')} after ${recreateSeconds.toFixed(1)} s; a purge then served in ${purgeSeconds.toFixed(1)} s`;
    } finally {
      sqs.destroy();
    }
  });

  // (b + d) Two new tasks bootstrap at once while KMS throttles; the NLB moves to them; the old one drains.
  await c.report.check(FAULT_CHECKS.replaced, async () => {
    const ordersBefore = pebbleOrders(c.host);
    const kmsBefore = c.host.aws.faulted.kms ?? 0;
    const load = new Load(https, c.ca, c.known);
    c.host.aws.setFault({
      services: ['kms'],
      kind: 'throttle',
      fraction: opts.kmsThrottleFraction,
      principal: 'task',
    });
    c.log(
      `KMS throttles ${Math.round(opts.kmsThrottleFraction * 100)} % of the task's calls; two tasks bootstrap`,
    );
    const t0 = Date.now();
    let fresh: StartedTask[] = [];
    let stops: StopResult[] = [];
    try {
      fresh = await Promise.all(['b', 'c'].map((l) => c.newTask(l)));
      await Promise.all(fresh.map((t) => t.agent.start(c.startTimeoutMs)));
      await Promise.all(fresh.map((t) => t.agent.healthy(c.startTimeoutMs)));
      const bootSeconds = (Date.now() - t0) / 1000;
      c.host.retarget(fresh.map((t) => t.address));
      c.log(
        `NLB: ${fresh.map((t) => t.address).join(', ')} registered, ${task.address} deregistered; draining it`,
      );
      await sleep(2000);
      stops = await task.agent.stop();
      retired.push(task);
      await sleep(3000);
      c.host.aws.setFault(undefined);
      const throttled = (c.host.aws.faulted.kms ?? 0) - kmsBefore;
      const loadLine = await load.stop();
      const unclean = stops.filter((s) => s.killed || s.seconds > s.stopTimeoutSeconds);
      const trouble = fresh.flatMap((t) => {
        const r = replacements(t.agent, names);
        return r.stopped || r.unhealthy || r.restarts
          ? [`${t.agent.pod}: ${r.stopped ?? ''} ${r.unhealthy} unhealthy, ${r.restarts} restarts`]
          : [];
      });
      const orders = pebbleOrders(c.host) - ordersBefore;
      const line = `two tasks HEALTHY ${bootSeconds.toFixed(0)} s after start with ${throttled} KMS calls throttled; old task drained (${stops.map((s) => `${s.container} ${s.exitCode} in ${s.seconds.toFixed(1)} s`).join(', ')}); ${loadLine}; ${orders} new ACME orders`;
      if (load.failed > 0 || unclean.length > 0 || trouble.length > 0 || orders > 0)
        throw new Error(`${line}${trouble.length ? `; ${trouble.join('; ')}` : ''}`);
      return line;
    } finally {
      c.host.aws.setFault(undefined);
      await load.stop();
      // The first new task carries on as the rehearsal's task; the second one stops (scale-in) later.
      if (fresh.length > 0) task = fresh[0] as StartedTask;
      retired.push(...fresh.slice(1));
    }
  });
  return { current: task, retired };
}
