import { z } from 'zod';
import { defineEnvContract, env } from '../config/env-contract.ts';

/**
 * The environment contracts of the edge's two containers. `edge-config` runs
 * bin/render-edge-config.ts (which parses with `edgeConfigEnv`); `edge` is nginx, whose
 * entrypoint (edge-image/edge-entrypoint.sh) and Lua (`os.getenv`) read `edgeEnv`: that contract
 * is what they read, kept here so the CDK and the synth tests can hold the task definition to it.
 */

const uidGid = z.string().regex(/^\d+:\d+$/, 'uid:gid');

export const edgeConfigEnv = defineEnvContract('render-edge-config', {
  edgeConfig: env.required(
    'EDGE_CONFIG',
    z.string().min(2),
    'The EdgeConfig as JSON (non-secret; the CDK stack validated it at synth).',
  ),
  confDir: env.optional('EDGE_CONF_DIR', z.string().min(1).default('/etc/edge'), 'Where nginx.conf goes.'),
  filesOwner: env.optional(
    'EDGE_FILES_OWNER',
    uidGid.optional(),
    "uid:gid that gets the files and volumes (the edge's user).",
  ),
  acmeAccountKey: env.secret(
    'EDGE_ACME_ACCOUNT_KEY',
    z.string().min(1).optional(),
    false,
    'The ACME account key (PEM, or JSON with privateKeyPem): its thumbprint makes HTTP-01 answers stateless.',
  ),
  ticketSecret: env.secret(
    'EDGE_TICKET_SECRET',
    z.string().min(32, 'at least 32 characters').optional(),
    false,
    "The region's session ticket secret: every task derives the same ticket keys from it (lib/edge/ticket-keys.ts). Needed while tls.sessionTickets is on.",
  ),
  logLevel: env.optional(
    'EDGE_LOG_LEVEL',
    z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    'debug, info, warn or error.',
  ),
});

export const edgeEnv = defineEnvContract('edge', {
  tlsEngine: env.optional(
    'EDGE_TLS_ENGINE',
    z.enum(['native', 'auto-ssl']).default('native'),
    'The TLS engine; auto-ssl makes the entrypoint prepare its directory.',
  ),
  controlToken: env.secret(
    'EDGE_CONTROL_TOKEN',
    z.string().min(32, 'at least 32 characters'),
    true,
    'Bearer token of the control listener (purge); read by lua/edge/control.lua.',
  ),
  redisPassword: env.secret(
    'EDGE_REDIS_PASSWORD',
    z.string().min(1).optional(),
    false,
    "The task's Redis password, if any; read by lua/edge/redis.lua.",
  ),
  confDir: env.optional(
    'EDGE_CONF_DIR',
    z.string().min(1).default('/etc/edge'),
    'Where the rendered nginx.conf is.',
  ),
  runDir: env.optional('EDGE_RUN_DIR', z.string().min(1).default('/var/run/edge'), 'The nginx prefix.'),
  nginxModules: env.optional(
    'EDGE_NGINX_MODULES',
    z.string().min(1).optional(),
    'File of load_module lines included ahead of nginx.conf (Debian base).',
  ),
});
