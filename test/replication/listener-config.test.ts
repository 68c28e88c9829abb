import { describe, expect, it } from 'vitest';
import { EnvConfigError } from '../../lib/config/env-contract.ts';
import { loadRedisListenerConfig } from '../../lib/sidecars/redis-listener/config.ts';
import { loadSqsListenerConfig } from '../../lib/sidecars/sqs-listener/config.ts';

const base = {
  EDGE_REGION: 'eu-west-1',
  EDGE_TASK_ID: 'task-1',
  EDGE_TABLE_NAME: 'edge',
  EDGE_LOCAL_KEY_FILE: '/run/edge/master.key',
  EDGE_HEALTH_PORT: '9201',
};
const sqs = {
  ...base,
  EDGE_CONTROL_URL: 'http://127.0.0.1:9145',
  EDGE_CONTROL_TOKEN: 'x'.repeat(32),
};

describe('listener config', () => {
  it('reads the EDGE_* variables of its contract, with defaults, deeply frozen', () => {
    const c = loadSqsListenerConfig(sqs);
    expect(c).toMatchObject({ region: 'eu-west-1', healthPort: 9201, bus: 'redis', bootstrapSegments: 8 });
    expect(loadRedisListenerConfig({ ...base, EDGE_PERSIST_CONCURRENCY: '8' }).concurrency).toBe(8);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names the variable and the problem, every problem at once, never a secret value', () => {
    const err = (() => {
      try {
        loadSqsListenerConfig({
          ...sqs,
          EDGE_CONTROL_TOKEN: 'short',
          EDGE_HEALTH_PORT: 'abc',
          EDGE_TABLE_NAME: '',
        });
      } catch (e) {
        return e as EnvConfigError;
      }
      throw new Error('expected a config error');
    })();
    expect(err).toBeInstanceOf(EnvConfigError);
    expect(err.problems).toEqual([
      'EDGE_TABLE_NAME is required but not set',
      expect.stringMatching(/^EDGE_HEALTH_PORT: .*\(got "abc"\)$/),
      'EDGE_CONTROL_TOKEN: at least 32 characters (got a secret value)',
    ]);
    expect(err.message).not.toContain('short');
  });

  it('checks what one variable requires of another', () => {
    expect(() => loadSqsListenerConfig({ ...sqs, EDGE_BUS: 'aws' })).toThrow(
      new EnvConfigError('sqs-listener', [
        'EDGE_SNS_TOPIC_ARN is required with EDGE_BUS=aws',
        'EDGE_DLQ_URL is required with EDGE_BUS=aws',
        'EDGE_DLQ_ARN is required with EDGE_BUS=aws',
      ]),
    );
    expect(() => loadSqsListenerConfig({ ...sqs, EDGE_KEY_SOURCE: 'kms' })).toThrow(
      'EDGE_KMS_KEY_ID is required with EDGE_KEY_SOURCE=kms',
    );
  });
});
