import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DeploymentConfig,
  deploymentNames,
  parseDeploymentConfig,
} from '../config/deployment-config.ts';
import { edgeGet } from './checks/edge-client.ts';
import { missingHealthPrograms } from './checks/health-commands.ts';
import { FAULT_CHECKS, type FaultOptions, faultChecks, type StartedTask } from './faults.ts';
import { type HostServices, startHostServices } from './host-services.ts';
import { assetDockerfiles, localImages } from './local-images.ts';
import { nlbTargets } from './nlb.ts';
import { verifyPermissions } from './permissions.ts';
import { imageConfig, imageExists, podmanOk } from './podman.ts';
import { CheckReport } from './report.ts';
import { makeLocalSecrets } from './secrets.ts';
import { CONTROL_PLANE_ACCESS_KEY, openControlPlane, type RehearsalTenants, seedTenants } from './seed.ts';
import { describeSubstitutions, type SubstitutionInputs, substituteContainer } from './substitutions.ts';
import { assemblyStacks, synthesize } from './synth.ts';
import { type RunnableContainer, signalNumber, TaskAgent } from './task-agent.ts';
import { readTaskDefinition, type TaskDefinition } from './task-definition.ts';

export interface RehearsalOptions {
  readonly configPath: string;
  /** A regional stack name; default the first region that is not the home region. */
  readonly stack?: string;
  /** An assembly already synthesized (`cdk synth -o DIR`), instead of synthesizing now. */
  readonly assembly?: string;
  /** Keep the run folder (assembly, logs, records) even when every check passes. */
  readonly keep?: boolean;
  /** After the serving checks, inject the faults AWS produces (`faults.ts`); default none. */
  readonly faults?: FaultOptions;
}

/** Bounds of the phases; generous next to the task's own start periods. */
const START_TIMEOUT_MS = 6 * 60_000;
const ISSUANCE_TIMEOUT_MS = 90_000;
const PURGE_TIMEOUT_MS = 20_000;

/** The task's dummy access key: only calls signed with it are judged against the task role. */
const TASK_ACCESS_KEY = 'REHEARSALTASKROLE';

const out = (line: string) => process.stdout.write(`rehearse: ${line}\n`);

/** Pick the stack: a non-home region by default (those broke before). */
function pickStack(
  config: DeploymentConfig,
  wanted: string | undefined,
  stacks: ReturnType<typeof assemblyStacks>,
) {
  const names = deploymentNames(config);
  const regional = config.regions.map((r) => names.regionalStack(r.region));
  const name =
    wanted ?? regional.find((_, i) => config.regions[i]?.region !== config.homeRegion) ?? regional[0];
  const stack = stacks.find((s) => s.stackName === name);
  if (!stack)
    throw new Error(`no stack ${name} in the assembly (have ${stacks.map((s) => s.stackName).join(', ')})`);
  return stack;
}

/** The container the NLB targets: the one with the target groups' ports mapped. */
function edgeContainer(td: TaskDefinition, port: number) {
  const c = td.containers.find((x) => x.portMappings.some((p) => p.containerPort === port));
  if (!c) throw new Error(`no container maps port ${port}`);
  return c;
}

/** The edge's control origin, from its own health check (`http://127.0.0.1:<port>/healthz`). */
function controlOrigin(td: TaskDefinition, port: number): string {
  const hc = edgeContainer(td, port).healthCheck?.command.join(' ') ?? '';
  const m = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(hc);
  if (!m) throw new Error(`cannot tell the edge's control port from its health check: ${hc}`);
  return m[1] as string;
}

/** The checks, in the order they run; the summary counts all of them, run or not. */
const CHECK = {
  synth: 'synth: the regional task definition',
  images: 'images resolve to local images',
  healthCommands: 'health-check commands exist in their images',
  running: 'task RUNNING (dependsOn conditions met)',
  healthy: 'task HEALTHY (every container health check)',
  readyz: 'edge /readyz is 200',
  issuance: 'custom domain: certificate issued through Pebble on the first handshake',
  subdomain: 'platform subdomain serves its tenant (wildcard by DNS-01)',
  directory: 'platform directory serves its tenant',
  customDomain: 'custom domain serves its tenant',
  certPush: "edge: the task Redis's certificates pushed into the edge's shared dict",
  purge: 'purge through the bus: the next request is a MISS',
  noRestart: 'no container exited or restarted while serving',
  stop: 'SIGTERM stop: every container exits cleanly within its stopTimeout',
  iam: 'IAM: recorded AWS calls against the task role',
} as const;
const PLAN: readonly string[] = Object.values(CHECK);

/** With faults, their checks run between the serving checks and the stop. */
function planOf(faults: boolean): readonly string[] {
  if (!faults) return PLAN;
  const at = PLAN.indexOf(CHECK.stop);
  return [...PLAN.slice(0, at), ...Object.values(FAULT_CHECKS), ...PLAN.slice(at)];
}

export async function rehearse(opts: RehearsalOptions): Promise<number> {
  const started = Date.now();
  const id = randomBytes(4).toString('hex');
  const runDir = mkdtempSync(join(tmpdir(), 'rehearse-'));
  const logDir = join(runDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const report = new CheckReport(out);
  const config = parseDeploymentConfig(JSON.parse(readFileSync(resolve(opts.configPath), 'utf8')));
  const names = deploymentNames(config);
  let stackName = '?';
  let agent: TaskAgent | undefined;
  let host: HostServices | undefined;
  let control: Awaited<ReturnType<typeof openControlPlane>> | undefined;
  /** Tasks the fault checks replaced or scaled in: stopped, logs kept, removed at the end. */
  let retired: StartedTask[] = [];
  const plan = planOf(opts.faults !== undefined);

  /** Marks the checks not run yet as failed (not run), up to but excluding `until`. */
  const skipRest = (because: string, until = plan.length) => {
    const first = because.split('\n')[0] as string;
    for (const name of plan.slice(0, until)) {
      if (!report.results.some((r) => r.name === name)) report.skip(name, first);
    }
  };

  const body = async (): Promise<void> => {
    // 1. Synthesize and read the task definition.
    const assembly = opts.assembly ? resolve(opts.assembly) : join(runDir, 'assembly');
    let read: { stack: ReturnType<typeof assemblyStacks>[number]; td: TaskDefinition } | undefined;
    await report.check(CHECK.synth, async () => {
      const t0 = Date.now();
      if (!opts.assembly) await synthesize({ configPath: resolve(opts.configPath), outDir: assembly });
      const stack = pickStack(config, opts.stack, assemblyStacks(assembly));
      stackName = stack.stackName;
      read = { stack, td: readTaskDefinition(stack) };
      return `${stackName} in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${read.td.containers.map((c) => c.name).join(', ')}`;
    });
    if (!read) {
      skipRest('no task definition (synth failed, see above)');
      return;
    }
    const { stack, td } = read;
    const targets = nlbTargets(td.scope);
    out(`the NLB targets ${edgeContainer(td, targets.https).name} on ${targets.http}/${targets.https}`);

    // 2. Images and secrets.
    const images = localImages();
    const dockerfiles = stack.assetsFile ? assetDockerfiles(stack.assetsFile) : new Map<string, string>();
    const secrets = makeLocalSecrets(
      td.containers.flatMap((c) => c.secrets),
      { dir: runDir, acmeAccountSecretName: names.acmeAccountSecret },
    );

    // 3. The pod first: its network is what the host services bind to.
    agent = new TaskAgent(
      {
        id,
        containers: td.containers.map((def) => ({
          def,
          image: def.image,
          environment: def.environment,
          secrets: [],
          extraMounts: [],
          stopSignal: 'SIGTERM',
        })),
        volumes: td.volumes,
        logDir,
      },
      (line) => out(`  [agent] ${line}`),
    );
    await agent.createPod();
    const gateway = (
      await podmanOk(['network', 'inspect', 'podman', '--format', '{{range .Subnets}}{{.Gateway}}{{end}}'])
    ).trim();
    const taskAddress = await agent.address();

    // 4. Host services: dynalite, the AWS stand-in, Pebble, the origin, the NLB.
    const tenants: RehearsalTenants = {
      shop: `shop-${id}`,
      customDomain: `www.shop-${id}.test`,
      blog: `blog-${id}`,
    };
    const originRoot = join(runDir, 'origin');
    for (const t of [tenants.shop, tenants.blog]) {
      mkdirSync(join(originRoot, t), { recursive: true });
      writeFileSync(join(originRoot, t, 'index.html'), `<h1>${t} rehearsal ${id}</h1>\n`);
    }
    writeFileSync(join(originRoot, tenants.shop, 'purge.txt'), 'version 1\n');
    const homeTopic = `arn:aws:sns:${config.homeRegion}:${config.account}:${names.topic}`;
    const queues = Object.values(td.scope.resources)
      .filter((r) => r.Type === 'AWS::SQS::Queue' && typeof r.Properties?.QueueName === 'string')
      .map((r) => ({ region: stack.region, name: String(r.Properties?.QueueName) }));
    host = await startHostServices({
      dir: join(runDir, 'host'),
      gateway,
      account: stack.account,
      region: stack.region,
      tableName: names.table,
      queues,
      topicKeys: { [homeTopic]: names.topicKeyAlias },
      multiRegionKeys: true,
      secrets: new Map([...secrets.values()].map((s) => [s.name, s.value])),
      originRoot,
      principals: { [TASK_ACCESS_KEY]: 'task', [CONTROL_PLANE_ACCESS_KEY]: 'control-plane' },
    });
    await host.attachTask(taskAddress, {
      http: targets.http,
      https: targets.https,
      proxyProtocol: targets.proxyProtocol,
    });

    // 5. The substitutions, printed, then the containers.
    const inputs: SubstitutionInputs = {
      region: stack.region,
      endpoints: {
        dynamodb: host.aws.url,
        sns: host.aws.url,
        sqs: host.aws.url,
        kms: host.aws.url,
        secretsManager: host.aws.url,
        route53: host.aws.url,
      },
      credentials: { accessKeyId: TASK_ACCESS_KEY, secretAccessKey: 'rehearsal' },
      acmeDirectories: config.acme.directories.map((d) => d.directoryUrl),
      pebbleDirectoryUrl: host.pebbleDirectoryInPod,
      pebbleTrustFile: host.pebbleTrustFile,
      images,
      originNetwork: `${gateway}/32`,
      assetDockerfiles: dockerfiles,
    };
    let runnable: RunnableContainer[] = [];
    const imagesOk = await report.check(CHECK.images, async () => {
      out('substitutions (everything else runs as synthesized):');
      for (const s of describeSubstitutions(td.containers, inputs)) out(`  ${s.what} → ${s.by}`);
      const missing: string[] = [];
      runnable = await Promise.all(
        td.containers.map(async (def) => {
          const sub = substituteContainer(def, inputs);
          if (!(await imageExists(sub.image))) missing.push(sub.image);
          const stopSignal = missing.includes(sub.image)
            ? 'SIGTERM'
            : (await imageConfig(sub.image)).stopSignal;
          return {
            def,
            image: sub.image,
            environment: sub.environment,
            secrets: def.secrets.map((s) => ({
              name: s.name,
              file: secrets.get(s.valueFrom)?.file as string,
            })),
            extraMounts: sub.extraMounts,
            stopSignal,
          };
        }),
      );
      if (missing.length > 0)
        throw new Error(`not built: ${[...new Set(missing)].join(', ')} (npm run images)`);
      return [...new Set(runnable.map((r) => `${r.def.name}=${r.image} (${r.stopSignal})`))].join(', ');
    });
    if (!imagesOk) {
      skipRest('images missing');
      return;
    }
    await report.check(CHECK.healthCommands, async () => {
      const bad = await missingHealthPrograms(runnable);
      if (bad.length > 0) {
        throw new Error(
          bad.map((b) => `${b.container}: ${b.error ?? `missing ${b.missing.join(', ')}`}`).join('; '),
        );
      }
      return `${runnable.filter((r) => r.def.healthCheck).length} health checks`;
    });

    // 6. The table as the control plane leaves it: the tenants exist before the task bootstraps.
    control = await openControlPlane({
      dir: runDir,
      dynamoEndpoint: host.dynalite.endpoint,
      tableName: names.table,
      topicArn: homeTopic,
      snsEndpoint: host.awsUrlOnHost,
    });
    await seedTenants(control.control, tenants, host.originUrlInPod);

    // 7. Run the task.
    await agent.createContainers(runnable);
    const running = await report.check(CHECK.running, async () => {
      await agent?.start(START_TIMEOUT_MS);
      return `address ${taskAddress}`;
    });
    const healthy =
      running &&
      (await report.check(CHECK.healthy, async () => {
        await agent?.healthy(START_TIMEOUT_MS);
        return '';
      }));
    if (!healthy) {
      // Serving checks cannot run; the stop and the permission check still can.
      skipRest(agent.stoppedBecause ?? 'the task did not become healthy', plan.indexOf(CHECK.stop));
    } else {
      await serveChecks({
        report,
        agent,
        host,
        td,
        targets,
        tenants,
        config,
        originRoot,
        control,
      });
      await report.check(CHECK.noRestart, async () => {
        if (agent?.stoppedBecause) throw new Error(agent.stoppedBecause);
        const restarted = td.containers.filter((c) => (agent?.restarts(c.name) ?? 0) > 0).map((c) => c.name);
        if (restarted.length > 0) throw new Error(`restarted: ${restarted.join(', ')}`);
        return '';
      });
      if (opts.faults) {
        const newTask = async (label: string): Promise<StartedTask> => {
          const dir = join(logDir, `task-${label}`);
          mkdirSync(dir, { recursive: true });
          const t = new TaskAgent(
            { id: `${id}${label}`, containers: runnable, volumes: td.volumes, logDir: dir },
            (line) => out(`  [agent ${label}] ${line}`),
          );
          await t.createPod();
          await t.createContainers(runnable);
          return { agent: t, address: await t.address() };
        };
        const result = await faultChecks(
          {
            report,
            host,
            td,
            region: stack.region,
            ca: await host.pebble.root(),
            control: control.control,
            tenant: tenants.shop,
            originPurgeFile: join(originRoot, tenants.shop, 'purge.txt'),
            known: [
              { host: tenants.customDomain, path: '/', expect: `${tenants.shop} rehearsal` },
              {
                host: `${tenants.blog}.${config.platformDomain}`,
                path: '/',
                expect: `${tenants.blog} rehearsal`,
              },
              { host: config.platformDomain, path: `/${tenants.shop}/`, expect: `${tenants.shop} rehearsal` },
            ],
            purgeHost: tenants.customDomain,
            newTask,
            startTimeoutMs: START_TIMEOUT_MS,
            log: (line) => out(`  [faults] ${line}`),
          },
          opts.faults,
          { agent, address: taskAddress },
        );
        retired = result.retired.filter((t) => t.agent !== result.current.agent);
        agent = result.current.agent;
        for (const t of retired) await t.agent.stop();
      }
    }

    // 8. Stop as ECS stops a task (whatever still runs, if it stopped on its own).
    if (agent.everStarted) {
      await report.check(CHECK.stop, async () => {
        const results = await (agent as TaskAgent).stop();
        const bad = results.filter((r) => {
          const signo = signalNumber(r.signal);
          const clean = r.exitCode === 0 || (signo !== undefined && r.exitCode === 128 + signo);
          return r.killed || !clean || r.seconds > r.stopTimeoutSeconds;
        });
        const line = results
          .map(
            (r) =>
              `${r.container} ${r.signal}→${r.exitCode} in ${r.seconds.toFixed(1)}/${r.stopTimeoutSeconds} s`,
          )
          .join(', ');
        if (bad.length > 0) throw new Error(`unclean: ${bad.map((b) => b.container).join(', ')}; ${line}`);
        return line;
      });
    } else {
      report.skip(CHECK.stop, 'the task never ran');
    }
    await agent.saveLogs();

    // 9. Permissions, offline, from the record of every AWS call.
    await report.check(CHECK.iam, () =>
      verifyPermissions({
        assemblyDir: assembly,
        stackName,
        recordFile: host?.recordFile as string,
        scope: td.scope,
        reportFile: join(logDir, 'iam-check.txt'),
      }),
    );
  };

  // Interrupted: the pod, its volumes and the host services go anyway.
  const interrupted = (signal: NodeJS.Signals) => {
    out(`${signal}: cleaning up`);
    void Promise.allSettled([agent?.destroy(), host?.stop()]).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    await body();
  } catch (err) {
    out(`error: ${(err as Error).stack ?? String(err)}`);
    await agent?.stop().catch(() => []);
    await agent?.saveLogs().catch(() => {});
    skipRest((err as Error).message);
  } finally {
    control?.close();
    for (const t of retired) {
      await t.agent.saveLogs().catch(() => {});
      await t.agent.destroy().catch((err: Error) => out(`cleanup: ${err.message}`));
    }
    await agent?.destroy().catch((err: Error) => out(`cleanup: ${err.message}`));
    await host?.stop().catch((err: Error) => out(`cleanup: ${err.message}`));
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }

  const failed = report.failed;
  if (failed || opts.keep) out(`logs, assembly and AWS call record kept in ${runDir}`);
  else rmSync(runDir, { recursive: true, force: true });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const total = report.results.length;
  out(`${failed ? 'FAILED' : 'ok'} ${report.passed}/${total} checks in ${seconds}s (stack ${stackName})`);
  return failed ? 1 : 0;
}

interface ServeContext {
  readonly report: CheckReport;
  readonly agent: TaskAgent;
  readonly host: HostServices;
  readonly td: TaskDefinition;
  readonly targets: ReturnType<typeof nlbTargets>;
  readonly tenants: RehearsalTenants;
  readonly config: DeploymentConfig;
  readonly originRoot: string;
  readonly control: Awaited<ReturnType<typeof openControlPlane>>;
}

/** After issuance, how long to wait for a second order that should not come. */
const ORDER_SETTLE_MS = 2000;

interface IssuanceSnapshot {
  readonly inTable: boolean;
  readonly inRedis: boolean;
  /** Orders the issuer logged for the domain (`ordering certificate`). */
  readonly domainOrders: number;
  /** Orders the issuer logged for any domain. */
  readonly allOrders: number;
  /** Orders Pebble added to its db (its log), any domain. */
  readonly pebbleOrders: number;
}

/** Where a domain's certificate and orders can be seen: the table, the task Redis, the issuer, Pebble. */
function issuanceProbe(c: ServeContext, domain: string): { snapshot(): Promise<IssuanceSnapshot> } {
  const redis = c.td.containers.find((x) => x.name === 'redis');
  const portAt = redis?.command?.indexOf('--port') ?? -1;
  const redisPort = (portAt >= 0 ? redis?.command?.[portAt + 1] : undefined) ?? '6379';
  const listener = c.td.containers.find((x) => x.name === 'sqs-listener');
  const prefix = listener?.environment.EDGE_REDIS_PREFIX ?? 'edge';
  const issuer = c.td.containers.find((x) => x.name === 'issuer');
  if (!issuer)
    throw new Error('the task has no issuer container (auto-ssl engine): nothing to count orders in');
  const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;
  return {
    snapshot: async () => {
      const [cert, exists, issuerLog] = await Promise.all([
        c.control.certificates.certificate(domain),
        c.agent.exec('redis', ['redis-cli', '-p', redisPort, 'EXISTS', `${prefix}:${domain}:latest`]),
        c.agent.logs(issuer.name),
      ]);
      const ordering = issuerLog.split('\n').filter((l) => l.includes('"msg":"ordering certificate"'));
      return {
        inTable: cert !== undefined,
        inRedis: exists.stdout.trim() === '1',
        domainOrders: ordering.filter((l) => l.includes(`"domain":"${domain}"`)).length,
        allOrders: ordering.length,
        pebbleOrders: count(readFileSync(c.host.pebble.logFile, 'utf8'), /Added order "/),
      };
    },
  };
}

/** Polls `fn` until it returns a value or the deadline passes (then rethrows its last error). */
async function eventually<T>(timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

async function serveChecks(c: ServeContext): Promise<void> {
  const { report, agent, host, td, targets, tenants, config } = c;
  const https = host.nlb.httpsPort;
  const ca = await host.pebble.root();
  const platform = config.platformDomain;

  await report.check(CHECK.readyz, async () => {
    const url = `${controlOrigin(td, targets.https)}/readyz`;
    const edgeName = edgeContainer(td, targets.https).name;
    const r = await agent.exec(edgeName, ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', url]);
    if (r.stdout.trim() !== '200') throw new Error(`${url} answered ${r.stdout.trim() || r.stderr.trim()}`);
    return url;
  });

  const expect = (body: string, tenant: string) => {
    if (!body.includes(`${tenant} rehearsal`))
      throw new Error(`body is not ${tenant}'s content: ${body.slice(0, 120)}`);
  };
  await report.check(CHECK.issuance, async () => {
    const domain = tenants.customDomain;
    const probe = issuanceProbe(c, domain);
    // Nothing issued before: no certificate in the table or the task's Redis, no order for it.
    const before = await probe.snapshot();
    if (before.inTable || before.inRedis || before.domainOrders > 0) {
      throw new Error(
        `before the first handshake ${domain} already has ${[before.inTable && 'a certificate in the table', before.inRedis && 'a certificate in the task Redis', before.domainOrders > 0 && `${before.domainOrders} issuer orders`].filter(Boolean).join(', ')}`,
      );
    }
    const t0 = Date.now();
    const first = await edgeGet({ port: https, host: domain, ca }).catch((err: Error) => err);
    if (first instanceof Error) throw new Error(`first handshake: ${first.message}`);
    if (first.verified) {
      const seconds = ((Date.now() - t0) / 1000).toFixed(1);
      // Exactly one order, triggered by that handshake; the certificate persisted and in Redis.
      await eventually(10_000, async () => {
        const a = await probe.snapshot();
        if (!a.inTable || !a.inRedis)
          throw new Error(
            `certificate ${a.inTable ? '' : 'not in the table '}${a.inRedis ? '' : 'not in the task Redis'}`,
          );
      });
      await sleep(ORDER_SETTLE_MS);
      const settled = await probe.snapshot();
      const pebbleOrders = settled.pebbleOrders - before.pebbleOrders;
      if (settled.domainOrders !== 1 || pebbleOrders !== settled.allOrders - before.allOrders) {
        throw new Error(
          `expected one order for ${domain}: the issuer ordered it ${settled.domainOrders} times (${settled.allOrders - before.allOrders} orders in all), Pebble added ${pebbleOrders}`,
        );
      }
      return `issued by ${first.issuer} in ${seconds} s; before: no certificate (table, task Redis), no order; after: 1 order (issuer log; Pebble +${pebbleOrders}), certificate in the table and Redis`;
    }
    const later = await eventually(ISSUANCE_TIMEOUT_MS, async () => {
      const r = await edgeGet({ port: https, host: tenants.customDomain, ca });
      if (!r.verified) throw new Error(r.verifyError);
      return r;
    }).catch((err: Error) => err);
    throw new Error(
      `the first handshake got an unverified certificate (${first.issuer}: ${first.verifyError}); ${later instanceof Error ? `still none after ${ISSUANCE_TIMEOUT_MS / 1000} s: ${later.message}` : `a verified one came ${((Date.now() - t0) / 1000).toFixed(1)} s later`}`,
    );
  });
  await report.check(CHECK.subdomain, async () => {
    const host = `${tenants.blog}.${platform}`;
    const r = await eventually(ISSUANCE_TIMEOUT_MS, async () => {
      const x = await edgeGet({ port: https, host, ca });
      if (!x.verified) throw new Error(`${host}: certificate not verified (${x.issuer}: ${x.verifyError})`);
      return x;
    });
    expect(r.body, tenants.blog);
    return `${host} ${r.status}`;
  });
  await report.check(CHECK.directory, async () => {
    const r = await edgeGet({ port: https, host: platform, path: `/${tenants.shop}/`, ca });
    if (!r.verified) throw new Error(`${platform}: certificate not verified (${r.issuer}: ${r.verifyError})`);
    expect(r.body, tenants.shop);
    return `${platform}/${tenants.shop}/ ${r.status}`;
  });
  await report.check(CHECK.customDomain, async () => {
    const r = await edgeGet({ port: https, host: tenants.customDomain, ca });
    if (!r.verified) throw new Error(`certificate not verified (${r.issuer}: ${r.verifyError})`);
    expect(r.body, tenants.shop);
    return `${tenants.customDomain} ${r.status}`;
  });
  await report.check(CHECK.certPush, async () => {
    // edge/cert_push.lua in the shipped image against the task's Redis container: the certificates
    // issued above reached the shared dict through keyspace notifications, and the watch never broke.
    const url = `${controlOrigin(td, targets.https)}/metrics`;
    const edgeName = edgeContainer(td, targets.https).name;
    const r = await agent.exec(edgeName, ['curl', '-sS', url]);
    const value = (series: string) => {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const pushed = value('edge_cert_pushes_total{result="pushed"}');
    const broken = value('edge_errors_total{kind="cert_push"}');
    if (pushed < 2)
      throw new Error(`${pushed} certificates pushed, expected the custom domain's and the wildcard`);
    if (broken > 0) throw new Error(`the watch was interrupted ${broken} times`);
    return `${pushed} pushed, the watch never interrupted`;
  });
  await report.check(CHECK.purge, async () => {
    const get = () => edgeGet({ port: https, host: tenants.customDomain, path: '/purge.txt', ca });
    const status = (r: { headers: Record<string, unknown> }) => String(r.headers['cache-status'] ?? '');
    await get();
    const cached = await get();
    if (!/; hit/.test(status(cached)))
      throw new Error(`second request not a HIT: Cache-Status "${status(cached)}"`);
    writeFileSync(join(c.originRoot, tenants.shop, 'purge.txt'), 'version 2\n');
    const t0 = Date.now();
    await c.control.control.purge(tenants.shop, { scope: 'tenant' });
    const after = await eventually(PURGE_TIMEOUT_MS, async () => {
      const r = await get();
      if (/; hit/.test(status(r)))
        throw new Error(`still a HIT ${PURGE_TIMEOUT_MS / 1000} s after the purge: "${status(r)}"`);
      return r;
    });
    if (!after.body.includes('version 2')) throw new Error(`MISS but old content: ${after.body.trim()}`);
    return `MISS ${((Date.now() - t0) / 1000).toFixed(1)} s after the purge (Cache-Status "${status(after)}")`;
  });
}
