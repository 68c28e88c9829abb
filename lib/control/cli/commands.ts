import { CommanderError, Option, Command as Program } from 'commander';
import type { TenantHsts } from '../../core/redis-format.ts';
import type { Origin } from '../../core/store/items.ts';
import { ValidationError } from '../errors.ts';
import type { PurgeTarget } from '../validation.ts';
import * as valid from '../validation.ts';
import { SETTINGS } from './config.ts';

/** A command line, parsed: what to do, the settings flags given, and how to print. */
export type Command =
  | { readonly name: 'help'; readonly text: string }
  | {
      readonly name: 'tenant add';
      readonly id: string;
      readonly origin: Origin;
      /** Absent: HSTS off. */
      readonly hsts?: TenantHsts;
    }
  | { readonly name: 'tenant remove'; readonly id: string }
  | { readonly name: 'tenant list' }
  | { readonly name: 'tenant show'; readonly id: string }
  | {
      readonly name: 'domain add';
      readonly domain: string;
      readonly tenant: string;
      readonly skipDnsCheck: boolean;
      readonly preverified: boolean;
      /** Seconds to wait for `active`; absent: return at once. */
      readonly wait?: { readonly timeoutSeconds: number; readonly intervalSeconds: number };
    }
  | { readonly name: 'domain remove'; readonly domain: string }
  | { readonly name: 'domain list'; readonly tenant?: string }
  | { readonly name: 'domain show'; readonly domain: string }
  | { readonly name: 'domain verify'; readonly domain: string }
  | { readonly name: 'purge'; readonly tenant: string; readonly target: PurgeTarget };

export interface ParsedCommandLine {
  readonly command: Command;
  readonly json: boolean;
  readonly settings: Record<string, string | string[] | boolean | undefined>;
}

const LIST_SETTINGS = new Set(['edge-address', 'dns-server']);
/** flag → [value name, help]. */
const SETTING_HELP: Record<string, [string, string]> = {
  table: ['name', 'EDGE_TABLE_NAME'],
  'dynamodb-endpoint': ['url', 'EDGE_DYNAMODB_ENDPOINT (dynalite; unset on AWS)'],
  region: ['region', 'EDGE_REGION or AWS_REGION'],
  bus: ['aws|redis', 'EDGE_BUS'],
  'sns-topic-arn': ['arn', 'EDGE_SNS_TOPIC_ARN (bus aws)'],
  'redis-url': ['redis://host:port', 'EDGE_BUS_REDIS_URL (bus redis)'],
  stream: ['name', 'EDGE_BUS_STREAM (bus redis; default edge:events)'],
  'key-source': ['file|kms', 'EDGE_KEY_SOURCE (no command decrypts keys)'],
  'kms-key-id': ['id', 'EDGE_KMS_KEY_ID'],
  'key-file': ['path', 'EDGE_LOCAL_KEY_FILE'],
  'edge-cname': ['name', 'EDGE_DNS_CNAME, e.g. edge.platform.example'],
  'edge-address': ['ip', 'EDGE_DNS_ADDRESSES (repeatable; the variable comma-separated)'],
  'dns-server': ['ip', 'EDGE_DNS_SERVERS (repeatable; default the system resolvers)'],
  'challenge-zone': ['zone', 'EDGE_DNS01_CHALLENGE_ZONE (delegated DNS-01; the issuers’ zone)'],
};

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/**
 * The settings and --json: listed once in `edge --help`, accepted (hidden) by every command too,
 * since commander hands everything after a command's first own option to that command.
 */
function globalOptions(cmd: Program, hidden: boolean): Program {
  const add = (o: Option) => cmd.addOption(hidden ? o.hideHelp() : o);
  add(new Option('--json', 'machine-readable output (errors as JSON on stderr)'));
  for (const [flag] of Object.values(SETTINGS)) {
    const [value, help] = SETTING_HELP[flag] ?? ['value', ''];
    const o = new Option(`--${flag} <${value}>`, help);
    add(LIST_SETTINGS.has(flag) ? o.argParser(collect) : o);
  }
  return cmd;
}

const EPILOG = `
exit status: 0 done, 1 the operation failed, 2 usage or validation error`;

/** The program, its actions recording the parsed command into `found` (one Program per parse). */
function program(
  found: { command?: Command; opts?: Record<string, unknown> },
  write: (text: string) => void,
): Program {
  const root = new Program('edge')
    .description('The edge control plane: tenants, custom domains, purges.')
    // Set before the commands are added: they inherit both. Errors become ValidationErrors.
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: write, outputError: () => {} })
    .showSuggestionAfterError(true)
    .helpCommand(false)
    .addHelpText('after', EPILOG);
  globalOptions(root, false);

  const leaf = (parent: Program, name: string, description: string) =>
    globalOptions(parent.command(name).description(description), true);
  const done = (cmd: Program, command: Command) => {
    found.command = command;
    found.opts = cmd.optsWithGlobals();
  };

  const tenant = root.command('tenant').description('tenants and their origins');
  leaf(tenant, 'add', 'create a tenant or replace its settings (origin, HSTS)')
    .argument('<id>', 'lowercase letters, digits and dashes')
    .option('--origin-s3 <endpoint>', 'an S3 static-website endpoint')
    .option('--prefix <key prefix>', 'key prefix in the bucket (with --origin-s3)')
    .option('--origin-http <url>', 'any HTTP origin')
    .option('--hsts-max-age <seconds>', 'send Strict-Transport-Security (off when not given; 1-63072000)')
    .option('--hsts-include-subdomains', 'with --hsts-max-age: includeSubDomains')
    .option('--hsts-preload', 'with --hsts-max-age: preload (needs includeSubDomains and >= 31536000)')
    .action((id: string, o: Record<string, string | boolean | undefined>, cmd: Program) => {
      const str = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);
      const hsts = hstsFrom(str(o.hstsMaxAge), o.hstsIncludeSubdomains === true, o.hstsPreload === true);
      done(cmd, {
        name: 'tenant add',
        id,
        origin: originFrom(str(o.originS3), str(o.originHttp), str(o.prefix)),
        ...(hsts ? { hsts } : {}),
      });
    });
  leaf(tenant, 'remove', "remove a tenant and the tenant's domains")
    .argument('<id>')
    .action((id: string, _o: unknown, cmd: Program) => done(cmd, { name: 'tenant remove', id }));
  leaf(tenant, 'list', 'every tenant').action((_o: unknown, cmd: Program) =>
    done(cmd, { name: 'tenant list' }),
  );
  leaf(tenant, 'show', 'a tenant, its domains and purges')
    .argument('<id>')
    .action((id: string, _o: unknown, cmd: Program) => done(cmd, { name: 'tenant show', id }));

  const domain = root.command('domain').description('custom domains: ownership, status, DNS records');
  leaf(domain, 'add', 'register a custom domain for a tenant (it starts pending_verification)')
    .argument('<domain>')
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--skip-dns-check', 'do not look at where the domain points now')
    .option('--preverified', 'the operator vouches for the owner (starts verified)')
    .option('--wait', 'wait until active (or failed), showing verification and issuance')
    .option('--timeout <seconds>', 'with --wait: give up after this long', '900')
    .option('--interval <seconds>', 'with --wait: seconds between looks', '5')
    .action((name: string, o: Record<string, string | boolean | undefined>, cmd: Program) =>
      done(cmd, {
        name: 'domain add',
        domain: name,
        tenant: o.tenant as string,
        skipDnsCheck: o.skipDnsCheck === true,
        preverified: o.preverified === true,
        ...(o.wait
          ? {
              wait: {
                timeoutSeconds: seconds('--timeout', o.timeout as string),
                intervalSeconds: seconds('--interval', o.interval as string),
              },
            }
          : {}),
      }),
    );
  leaf(domain, 'remove', 'stop serving a domain')
    .argument('<domain>')
    .action((name: string, _o: unknown, cmd: Program) => done(cmd, { name: 'domain remove', domain: name }));
  leaf(domain, 'list', 'every domain, or one tenant’s')
    .option('--tenant <id>', 'only this tenant’s')
    .action((o: { tenant?: string }, cmd: Program) => done(cmd, { name: 'domain list', tenant: o.tenant }));
  leaf(domain, 'show', 'status brought up to date, certificate, purges, the DNS records to create')
    .argument('<domain>')
    .action((name: string, _o: unknown, cmd: Program) => done(cmd, { name: 'domain show', domain: name }));
  leaf(domain, 'verify', 'look for the ownership proof (TXT or HTTP token) now')
    .argument('<domain>')
    .action((name: string, _o: unknown, cmd: Program) => done(cmd, { name: 'domain verify', domain: name }));

  leaf(root, 'purge', "drop cached copies of a tenant's content everywhere (default: everything)")
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--host <host>', 'one host of the tenant')
    .option('--prefix </path/>', 'a path prefix on every host of the tenant')
    .option('--url <https://host/path>', 'one URL')
    .action((o: Record<string, string | undefined>, cmd: Program) =>
      done(cmd, {
        name: 'purge',
        tenant: o.tenant as string,
        target: purgeTarget(o.host, o.prefix, o.url),
      }),
    );
  return root;
}

function usage(message: string): never {
  throw new ValidationError(message);
}

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usage(`${flag} takes a whole number of seconds (got "${value}")`);
  return n;
}

/** commander's camelCase option values back to the flags' names, as loadCliConfig reads them. */
function settingsFrom(opts: Record<string, unknown>): ParsedCommandLine['settings'] {
  const out: ParsedCommandLine['settings'] = {};
  for (const [flag] of Object.values(SETTINGS)) {
    const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = opts[key];
    if (value !== undefined) out[flag] = value as string | string[];
  }
  return out;
}

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const found: { command?: Command; opts?: Record<string, unknown> } = {};
  let help = '';
  const root = program(found, (text) => {
    help += text;
  });
  try {
    root.parse([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
      return { command: { name: 'help', text: help }, json: argv.includes('--json'), settings: {} };
    }
    if (err.code === 'commander.help') {
      // A group (or nothing) without a subcommand.
      const group = argv.find((a) => !a.startsWith('-'));
      usage(
        group === undefined
          ? 'a command is required (edge --help lists them)'
          : `"${group}" needs a subcommand: ${subcommands(root, group)}`,
      );
    }
    usage(err.message.replace(/^error: /, '').replace(/\n/g, ' '));
  }
  const command = found.command ?? usage('a command is required (edge --help lists them)');
  const opts = found.opts ?? {};
  validate(command);
  return { command, json: opts.json === true, settings: settingsFrom(opts) };
}

function subcommands(root: Program, group: string): string {
  const names = root.commands.find((c) => c.name() === group)?.commands.map((c) => c.name()) ?? [];
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('');
}

/** Checks names and targets before any configuration is read, so a typo is reported as such. */
function validate(c: Command): void {
  if ('id' in c) valid.tenantId(c.id);
  if ('origin' in c) valid.origin(c.origin);
  if ('domain' in c) valid.domainName(c.domain);
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

function hstsFrom(
  maxAge: string | undefined,
  includeSubDomains: boolean,
  preload: boolean,
): TenantHsts | undefined {
  if (maxAge === undefined) {
    if (includeSubDomains || preload)
      usage('--hsts-include-subdomains and --hsts-preload go with --hsts-max-age <seconds>');
    return undefined;
  }
  if (!/^\d+$/.test(maxAge)) usage(`invalid --hsts-max-age "${maxAge}": a number of seconds`);
  return valid.hsts({ maxAgeSeconds: Number(maxAge), includeSubDomains, preload });
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
