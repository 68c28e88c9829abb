import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallRecord } from '../../lib/rehearsal/aws/record.ts';
import { checkPermissions, formatReport, parseAllowList } from '../../lib/rehearsal/iam-check.ts';

const ACCOUNT = '111122223333';
const REGION = 'eu-central-1';
const QUEUE_ARN = `arn:aws:sqs:${REGION}:${ACCOUNT}:fixture-dlq`;
const SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:fixture-key-??????`;

let dir: string;
let assemblyDir: string;

function call(action: string, resource: string): CallRecord {
  return {
    time: '2026-01-01T00:00:00.000Z',
    service: 'sqs',
    action,
    resource,
    region: REGION,
    principal: 'task',
    context: {},
    outcome: 'ok',
  };
}

function writeRecord(calls: CallRecord[]): string {
  const file = join(dir, `calls-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(file, calls.map((c) => `${JSON.stringify(c)}\n`).join(''));
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'iam-check-'));
  assemblyDir = join(dir, 'cdk.out');
  const app = new App({ outdir: assemblyDir });
  const stack = new Stack(app, 'Fixture', {
    stackName: 'fixture-stack',
    env: { account: ACCOUNT, region: REGION },
  });
  const queue = new sqs.Queue(stack, 'Dlq', { queueName: 'fixture-dlq' });
  const role = new iam.Role(stack, 'TaskRole', {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
  });
  const task = new ecs.FargateTaskDefinition(stack, 'Task', { taskRole: role });
  task.addContainer('app', {
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:latest'),
  });
  new iam.Policy(stack, 'Permissions', {
    roles: [role],
    statements: [
      new iam.PolicyStatement({
        sid: 'ReadQueue',
        actions: ['sqs:ReceiveMessage'],
        resources: [queue.queueArn],
      }),
      new iam.PolicyStatement({
        sid: 'AccountKey',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          `arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:fixture-key-??????`,
        ],
      }),
    ],
  });
  // A key whose id CloudFormation generates: the check finds it through its alias in the calls.
  const keyStack = new Stack(app, 'KeyFixture', {
    stackName: 'fixture-key-stack',
    env: { account: ACCOUNT, region: REGION },
  });
  const key = new kms.Key(keyStack, 'Key', { alias: 'alias/fixture' });
  const keyRole = new iam.Role(keyStack, 'TaskRole', {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
  });
  new ecs.FargateTaskDefinition(keyStack, 'Task', { taskRole: keyRole }).addContainer('app', {
    image: ecs.ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:latest'),
  });
  new iam.Policy(keyStack, 'Permissions', {
    roles: [keyRole],
    statements: [new iam.PolicyStatement({ sid: 'Key', actions: ['kms:Decrypt'], resources: [key.keyArn] })],
  });
  app.synth();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the offline permission check', () => {
  it('allows a granted call, denies an ungranted one and flags a grant no call used', async () => {
    const recordFile = writeRecord([
      call('sqs:ReceiveMessage', QUEUE_ARN),
      call('sqs:ReceiveMessage', QUEUE_ARN),
      call('sqs:DeleteQueue', QUEUE_ARN),
    ]);
    const report = await checkPermissions({ assemblyDir, stackName: 'fixture-stack', recordFile });

    expect(report.roleLogicalId).toMatch(/^TaskRole/);
    expect(report.unresolved).toEqual([]);
    expect(report.calls.map((v) => [v.call.action, v.count, v.decision])).toEqual([
      ['sqs:ReceiveMessage', 2, 'Allowed'],
      ['sqs:DeleteQueue', 1, 'ImplicitlyDenied'],
    ]);
    expect(report.denied.map((v) => v.reason)).toEqual([
      'no statement of the task role grants sqs:DeleteQueue',
    ]);
    expect(report.unused).toEqual([
      {
        statement: expect.stringMatching(/^Permissions[0-9A-F]*\/AccountKey$/),
        action: 'secretsmanager:GetSecretValue',
        resource: SECRET_ARN,
        conditional: false,
      },
    ]);
    expect(report.ok).toBe(false);
    expect(formatReport(report).split('\n').at(-1)).toBe(
      'iam-check fixture-stack: FAIL: 1/2 distinct calls allowed, 1 denied, 1 unused grants (0 expected), 0 unresolved references',
    );
  });

  it('names the resource when a granted action targets another one', async () => {
    const other = `arn:aws:sqs:${REGION}:${ACCOUNT}:someone-elses-queue`;
    const report = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-stack',
      recordFile: writeRecord([call('sqs:ReceiveMessage', other)]),
    });
    expect(report.denied.map((v) => v.reason)).toEqual([
      expect.stringMatching(
        new RegExp(`^Permissions[0-9A-F]*/ReadQueue grants sqs:ReceiveMessage but not on ${other}$`),
      ),
    ]);
  });

  it('moves allow-listed grants to the expected-unused list and reports stale entries', async () => {
    const allowUnusedFile = join(dir, 'expected-unused.txt');
    writeFileSync(
      allowUnusedFile,
      [
        '# renewal paths do not run in a short rehearsal',
        'secretsmanager:GetSecretValue arn:aws:secretsmanager:*:secret:fixture-key-*  # read at start only',
        'sqs:DeleteQueue *',
        '',
      ].join('\n'),
    );
    const report = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-stack',
      recordFile: writeRecord([call('sqs:ReceiveMessage', QUEUE_ARN)]),
      allowUnusedFile,
    });
    expect(report.ok).toBe(true);
    expect(report.unused).toEqual([]);
    expect(report.expectedUnused.map((g) => g.action)).toEqual(['secretsmanager:GetSecretValue']);
    expect(report.staleAllowList).toEqual(['sqs:DeleteQueue *']);
  });

  it('resolves a generated key id through the alias the recorded calls carry', async () => {
    const keyArn = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0f0f0f0f-0000-4000-8000-000000000000`;
    const decrypt = {
      ...call('kms:Decrypt', keyArn),
      service: 'kms' as const,
      context: { 'kms:ResourceAliases': ['alias/fixture'] },
    };
    const report = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-key-stack',
      recordFile: writeRecord([decrypt]),
    });
    expect(report.unresolved).toEqual([]);
    expect(report.calls.map((v) => v.decision)).toEqual(['Allowed']);
    expect(report.unused).toEqual([]);
  });

  it("judges only the task's calls: another caller's (the control plane's) are counted, not evaluated", async () => {
    const publish = {
      ...call('sns:Publish', `arn:aws:sns:${REGION}:${ACCOUNT}:events`),
      principal: 'control-plane',
    };
    const report = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-stack',
      recordFile: writeRecord([call('sqs:ReceiveMessage', QUEUE_ARN), publish, publish]),
    });
    expect(report.calls.map((v) => v.call.action)).toEqual(['sqs:ReceiveMessage']);
    expect(report.denied).toEqual([]);
    expect(report.otherCallers).toEqual([{ principal: 'control-plane', count: 2 }]);
    expect(formatReport(report).split('\n').at(-1)).toMatch(/, 2 calls by others not judged$/);
  });

  it('strict: an unused grant the allow-list does not name fails the check', async () => {
    const recordFile = writeRecord([call('sqs:ReceiveMessage', QUEUE_ARN)]);
    const strict = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-stack',
      recordFile,
      strict: true,
    });
    expect(strict.ok).toBe(false);
    expect(formatReport(strict)).toContain('UNUSED allowed but never needed: secretsmanager:GetSecretValue');
    const allowUnusedFile = join(dir, 'strict-allow.txt');
    writeFileSync(allowUnusedFile, 'secretsmanager:GetSecretValue *  # AccountKey: read at start\n');
    const listed = await checkPermissions({
      assemblyDir,
      stackName: 'fixture-stack',
      recordFile,
      strict: true,
      allowUnusedFile,
    });
    expect(listed.ok).toBe(true);
  });

  it('rejects a malformed allow-list line with its position', () => {
    expect(() => parseAllowList('sqs:ReceiveMessage\n', 'x.txt')).toThrow(
      'x.txt:1: expected "<action> <resource>", got "sqs:ReceiveMessage"',
    );
  });

  it('names the stacks of the assembly when the stack is not there', async () => {
    await expect(
      checkPermissions({ assemblyDir, stackName: 'nope', recordFile: writeRecord([]) }),
    ).rejects.toThrow('no stack "nope" in');
  });
});
