#!/usr/bin/env -S node --import tsx
import { main } from '../lib/sidecars/redis-listener/main.ts';
// The redis-listener sidecar: persists and announces certificates written to the task's Redis.
import { runMain } from '../lib/sidecars/runtime/start.ts';

runMain('redis-listener', main);
