import type { ControlPlane } from '../control-plane.ts';
import { ConflictError, DnsCheckError, NotFoundError, PublishError, ValidationError } from '../errors.ts';
import { type Command, parseCommandLine } from './commands.ts';
import { loadCliConfig } from './config.ts';
import * as format from './format.ts';
import { WaitFailedError, waitUntilActive } from './wait.ts';

export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Runs one command line; returns the exit status. Never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  try {
    const { command, settings } = parseCommandLine(argv);
    if (command.name === 'help') {
      io.stdout(command.text);
      return EXIT.ok;
    }
    const config = loadCliConfig(settings, io.env);
    // The SDK clients load only for a command that runs (help and usage errors stay quick).
    const { wire } = await import('./wiring.ts');
    const wired = wire(config);
    try {
      const [result, text] = await execute(wired.control, command, json ? () => {} : io.stdout);
      io.stdout(`${json ? JSON.stringify(result, null, 2) : text}\n`);
      return EXIT.ok;
    } finally {
      await wired.close();
    }
  } catch (err) {
    const status = err instanceof ValidationError ? EXIT.usage : EXIT.failed;
    const error = err instanceof Error ? err : new Error(String(err));
    const kind = KINDS.get(error.constructor) ?? 'error';
    const records = err instanceof WaitFailedError ? err.records : undefined;
    if (json) {
      const detail = err instanceof WaitFailedError ? { domain: err.domain, records } : {};
      io.stderr(`${JSON.stringify({ error: { kind, message: error.message, ...detail } })}\n`);
    } else {
      const missing = records ? format.records(records) : '';
      io.stderr(
        `edge: ${error.message}${missing ? `\n${missing}` : ''}${status === EXIT.usage ? '\n(edge --help for usage)' : ''}\n`,
      );
    }
    return status;
  }
}

const KINDS = new Map<unknown, string>([
  [ValidationError, 'usage'],
  [NotFoundError, 'not_found'],
  [ConflictError, 'conflict'],
  [DnsCheckError, 'dns_check'],
  [PublishError, 'publish'],
  [WaitFailedError, 'failed'],
]);

async function execute(
  cp: ControlPlane,
  c: Exclude<Command, { name: 'help' }>,
  print: (text: string) => void,
): Promise<[unknown, string]> {
  switch (c.name) {
    case 'tenant add': {
      const r = await cp.tenants.add(c.id, c.origin, c.hsts ? { hsts: c.hsts } : {});
      return [r, format.tenantAdded(r)];
    }
    case 'tenant remove': {
      const r = await cp.tenants.remove(c.id);
      return [r, format.tenantRemoved(r)];
    }
    case 'tenant list': {
      const r = await cp.tenants.list();
      return [{ tenants: r }, format.tenantList(r)];
    }
    case 'tenant show': {
      const r = await cp.tenants.show(c.id);
      return [r, format.tenantShow(r)];
    }
    case 'domain add': {
      const r = await cp.domains.add(c.domain, c.tenant, {
        skipDnsCheck: c.skipDnsCheck,
        preverified: c.preverified,
      });
      if (!c.wait) return [r, format.domainAdded(r)];
      print(`${format.domainAdded(r)}\n`);
      const d = await waitUntilActive(cp, r.domain.domain, {
        ...c.wait,
        progress: (line) => print(`${line}\n`),
      });
      return [d, format.domainShow(d)];
    }
    case 'domain remove': {
      const r = await cp.domains.remove(c.domain);
      return [r, format.domainRemoved(r)];
    }
    case 'domain list': {
      const r = await cp.domains.list({ tenant: c.tenant });
      return [{ domains: r }, format.domainList(r)];
    }
    case 'domain show': {
      const r = await cp.domains.show(c.domain);
      return [r, format.domainShow(r)];
    }
    case 'domain verify': {
      const r = await cp.domains.verify(c.domain);
      return [r, format.domainList([r])];
    }
    case 'purge': {
      const r = await cp.purge(c.tenant, c.target);
      return [r, format.purged(r)];
    }
  }
}
