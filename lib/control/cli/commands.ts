import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Origin } from '../../core/store/items.ts';
import { ValidationError } from '../errors.ts';
import type { PurgeTarget } from '../validation.ts';
import * as valid from '../validation.ts';
import { SETTINGS } from './config.ts';

/** A command line, parsed: what to do, the settings flags given, and how to print. */
export type Command =
  | { readonly name: 'help'; readonly topic?: string }
  | { readonly name: 'tenant add'; readonly id: string; readonly origin: Origin }
  | { readonly name: 'tenant remove'; readonly id: string }
  | { readonly name: 'tenant list' }
  | { readonly name: 'tenant show'; readonly id: string }
  | {
      readonly name: 'domain add';
      readonly domain: string;
      readonly tenant: string;
      readonly skipDnsCheck: boolean;
      readonly preverified: boolean;
    }
  | { readonly name: 'domain remove'; readonly domain: string }
  | { readonly name: 'domain list'; readonly tenant?: string }
  | { readonly name: 'domain show'; readonly domain: string }
  | { readonly name: 'purge'; readonly tenant: string; readonly target: PurgeTarget };

export interface ParsedCommandLine {
  readonly command: Command;
  readonly json: boolean;
  readonly settings: Record<string, string | string[] | boolean | undefined>;
}

export const USAGE = `usage: edge <command> [options]

  tenant add <id> (--origin-s3 <endpoint> [--prefix <key prefix>] | --origin-http <url>)
  tenant remove <id>                 also removes the tenant's domains
  tenant list
  tenant show <id>
  domain add <domain> --tenant <id> [--skip-dns-check] [--preverified]
                                     --preverified: the operator vouches for the owner
  domain remove <domain>
  domain list [--tenant <id>]
  domain show <domain>               registry entry, certificate state, purges
  purge --tenant <id> [--host <host> | --prefix </path/> | --url <https://host/path>]

options:
  --json                             machine-readable output
  --table <name>                     EDGE_TABLE_NAME
  --dynamodb-endpoint <url>          EDGE_DYNAMODB_ENDPOINT (dynalite; unset on AWS)
  --region <region>                  EDGE_REGION or AWS_REGION
  --bus aws|redis                    EDGE_BUS
  --sns-topic-arn <arn>              EDGE_SNS_TOPIC_ARN (bus aws)
  --redis-url <redis://host:port>    EDGE_BUS_REDIS_URL (bus redis)
  --stream <name>                    EDGE_BUS_STREAM (bus redis; default edge:events)
  --key-source file|kms              EDGE_KEY_SOURCE (optional; no command decrypts keys)
  --kms-key-id <id>                  EDGE_KMS_KEY_ID
  --key-file <path>                  EDGE_LOCAL_KEY_FILE
  --edge-cname <name>                EDGE_DNS_CNAME, e.g. edge.platform.example
  --edge-address <ip> (repeatable)   EDGE_DNS_ADDRESSES (comma-separated)
  --dns-server <ip> (repeatable)     EDGE_DNS_SERVERS (default: the system's resolvers)

exit status: 0 done, 1 the operation failed, 2 usage or validation error
`;

const settingOptions = Object.fromEntries(
  Object.values(SETTINGS).map(([flag]) => [
    flag,
    { type: 'string', multiple: flag === 'edge-address' || flag === 'dns-server' },
  ]),
) as NonNullable<ParseArgsConfig['options']>;

const OPTIONS = {
  ...settingOptions,
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'origin-s3': { type: 'string' },
  'origin-http': { type: 'string' },
  prefix: { type: 'string' },
  tenant: { type: 'string' },
  'skip-dns-check': { type: 'boolean' },
  preverified: { type: 'boolean' },
  host: { type: 'string' },
  url: { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

/** The options each command accepts besides the settings, --json and --help. */
const ACCEPTS: Record<string, readonly string[]> = {
  'tenant add': ['origin-s3', 'origin-http', 'prefix'],
  'tenant remove': [],
  'tenant list': [],
  'tenant show': [],
  'domain add': ['tenant', 'skip-dns-check', 'preverified'],
  'domain remove': [],
  'domain list': ['tenant'],
  'domain show': [],
  purge: ['tenant', 'host', 'prefix', 'url'],
};

/** Positional arguments after the command's name. */
const ARGUMENTS: Record<string, readonly string[]> = {
  'tenant add': ['id'],
  'tenant remove': ['id'],
  'tenant show': ['id'],
  'domain add': ['domain'],
  'domain remove': ['domain'],
  'domain show': ['domain'],
};

function usage(message: string): never {
  throw new ValidationError(message);
}

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    // node's messages are precise but long; keep their first sentence.
    usage(String((err as Error).message).split('. ')[0] ?? 'invalid arguments');
  }
  const { values, positionals } = parsed;
  const json = values.json === true;
  const settings = values as Record<string, string | string[] | boolean | undefined>;
  const [group, action, ...rest] = positionals;
  if (group === undefined || group === 'help') {
    if (values.help || group === 'help') return { command: { name: 'help' }, json, settings };
    usage('a command is required (edge --help lists them)');
  }
  const name = group === 'purge' ? 'purge' : `${group} ${action ?? ''}`.trim();
  const args = group === 'purge' ? [action, ...rest].filter((a) => a !== undefined) : rest;
  if (!(name in ACCEPTS)) {
    if (group === 'tenant' || group === 'domain') {
      usage(
        action === undefined
          ? `"${group}" needs a subcommand: add, remove, list or show`
          : `unknown command "${name}"`,
      );
    }
    usage(`unknown command "${group}" (edge --help lists the commands)`);
  }
  if (values.help) return { command: { name: 'help', topic: name }, json, settings };
  const accepted = new Set(ACCEPTS[name]);
  for (const option of Object.keys(values)) {
    const isCommandOption = !(option in settingOptions) && option !== 'json' && option !== 'help';
    if (isCommandOption && !accepted.has(option)) usage(`option --${option} is not valid for "${name}"`);
  }
  const expected = ARGUMENTS[name] ?? [];
  if (args.length < expected.length) usage(`"${name}" needs <${expected[args.length]}>`);
  if (args.length > expected.length) usage(`unexpected argument "${args[expected.length]}" for "${name}"`);
  const arg = args[0] as string;
  const v = values as Record<string, string | boolean | undefined>;
  const str = (k: string) => v[k] as string | undefined;
  const command = ((): Command => {
    switch (name) {
      case 'tenant add':
        return { name, id: arg, origin: originFrom(str('origin-s3'), str('origin-http'), str('prefix')) };
      case 'tenant remove':
      case 'tenant show':
        return { name, id: arg };
      case 'tenant list':
        return { name };
      case 'domain add':
        return {
          name,
          domain: arg,
          tenant: str('tenant') ?? usage('"domain add" needs --tenant <id>'),
          skipDnsCheck: v['skip-dns-check'] === true,
          preverified: v.preverified === true,
        };
      case 'domain remove':
      case 'domain show':
        return { name, domain: arg };
      case 'domain list':
        return { name, tenant: str('tenant') };
      default:
        return {
          name: 'purge',
          tenant: str('tenant') ?? usage('"purge" needs --tenant <id>'),
          target: purgeTarget(str('host'), str('prefix'), str('url')),
        };
    }
  })();
  validate(command);
  return { command, json, settings };
}

/** Checks names and targets before any configuration is read, so a typo is reported as such. */
function validate(c: Command): void {
  if ('id' in c) valid.tenantId(c.id);
  if ('origin' in c) valid.origin(c.origin);
  if ('domain' in c) valid.hostname(c.domain);
  if ('tenant' in c && c.tenant !== undefined) valid.tenantId(c.tenant);
  if (c.name === 'purge') valid.purgeRequest(c.tenant, c.target);
}

function originFrom(s3: string | undefined, http: string | undefined, prefix: string | undefined): Origin {
  if (s3 !== undefined && http !== undefined) usage('give one of --origin-s3 and --origin-http, not both');
  if (s3 !== undefined)
    return prefix ? { type: 's3-website', endpoint: s3, prefix } : { type: 's3-website', endpoint: s3 };
  if (prefix !== undefined) usage('--prefix goes with --origin-s3');
  if (http !== undefined) return { type: 'http', url: http };
  return usage('"tenant add" needs an origin: --origin-s3 <endpoint> or --origin-http <url>');
}

function purgeTarget(
  host: string | undefined,
  prefix: string | undefined,
  url: string | undefined,
): PurgeTarget {
  const given = [host && '--host', prefix && '--prefix', url && '--url'].filter(Boolean);
  if (given.length > 1) usage(`give at most one of --host, --prefix and --url (got ${given.join(', ')})`);
  if (host !== undefined) return { scope: 'host', host };
  if (prefix !== undefined) return { scope: 'prefix', prefix };
  if (url !== undefined) return { scope: 'url', url };
  return { scope: 'tenant' };
}
