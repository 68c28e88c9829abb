// Bootstrap time: N certificates (one PEM reused under N names) from dynalite into an empty Redis.
//   npx tsx bench/bootstrap.ts [--certs 10000] [--runs 3] [--segments 8]
import { pino } from 'pino';
import { RedisKeys } from '../lib/core/redis-format.ts';
import { makeCertRecord } from '../lib/local/self-signed-cert.ts';
import { Replica } from '../lib/sidecars/listener-runtime/replica.ts';
import { bootstrap } from '../lib/sidecars/sqs-listener/bootstrap.ts';
import { arg, pool, startBenchStack } from './replication/setup.ts';

const certs = arg('certs', 10_000);
const runs = arg('runs', 3);
const segments = arg('segments', 8);
const stack = await startBenchStack('bootstrap');
try {
  const record = await makeCertRecord(['bench.example.com'], 90);
  const names = Array.from({ length: certs }, (_, i) => `c${i}.bench.example.com`);
  const seeded = Date.now();
  await pool(names, 32, (name) => stack.store.putCert(name, record));
  console.log(`seeded ${certs} certificates in ${Date.now() - seeded} ms (not measured)`);
  const log = pino({ level: 'warn' });
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    await stack.redis.flushall();
    const replica = new Replica(stack.redis, new RedisKeys('edge'));
    const r = await bootstrap(stack.store, stack.redis, replica, log, { segments, pageSize: 500 });
    const keys = (await stack.redis.keys('edge:*:latest')).length;
    if (keys !== certs) throw new Error(`run ${run}: ${keys} certificates in Redis, expected ${certs}`);
    times.push(r.ms);
    console.log(`run ${run + 1}: ${r.certificates} certificates, ${r.pages} pages, ${r.ms} ms`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bench: 'bootstrap',
      certs,
      segments,
      runs,
      medianMs: sorted[Math.floor(sorted.length / 2)],
      times,
      targetMs: 5000,
    }),
  );
} finally {
  await stack.stop();
}
