#!/usr/bin/env -S node --import tsx
// The issuer sidecar: ACME client of the native TLS engine (lib/sidecars/issuer; its environment
// contract is `issuerEnv` in lib/sidecars/issuer/config.ts).
import { main } from '../lib/sidecars/issuer/main.ts';
import { runMain } from '../lib/sidecars/runtime/start.ts';

runMain('issuer', main);
