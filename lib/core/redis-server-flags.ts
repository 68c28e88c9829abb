/**
 * How every task's Redis runs, locally and on AWS: no persistence (the table is the durable copy
 * and Redis is rebuilt from it at start), and keyspace notifications for strings, which the
 * redis-listener depends on (K: keyspace, $: strings, g: generic, x: expired).
 */
export const TASK_REDIS_FLAGS: readonly string[] = [
  '--save',
  '',
  '--appendonly',
  'no',
  '--notify-keyspace-events',
  'K$gx',
];
