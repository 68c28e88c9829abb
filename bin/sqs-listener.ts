#!/usr/bin/env -S node --import tsx
// The sqs-listener sidecar: bootstraps the task's Redis, then applies control events.
import { runMain } from '../lib/sidecars/runtime/start.ts';
import { main } from '../lib/sidecars/sqs-listener/main.ts';

runMain('sqs-listener', main);
