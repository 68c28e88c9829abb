import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from '../control-plane.ts';
import type { DnsInstruction, DomainDetails } from '../domains.ts';
import * as format from './format.ts';

/** The domain did not become active: failed, or still on its way when the time ran out. */
export class WaitFailedError extends Error {
  override name = 'WaitFailedError';
  constructor(
    message: string,
    readonly domain: DomainDetails,
    /** The DNS records still missing. */
    readonly records: readonly DnsInstruction[],
  ) {
    super(message);
  }
}

/** What the domain waits for now, in words (the progress line). */
function waitingFor(d: DomainDetails): string {
  switch (d.status) {
    case 'pending_verification':
      return 'verification: waiting for the ownership record (TXT or HTTP token)';
    case 'verified':
      return 'issuance: waiting for the first HTTPS request, or the delegated _acme-challenge CNAME';
    case 'issuing':
      return 'issuance: the certificate is being ordered';
    case 'moved_away':
      return `the domain no longer points at the edge (${d.reason ?? 'no reason given'})`;
    default:
      return format.status(d);
  }
}

/**
 * `domain add --wait`: looks at the domain every `intervalSeconds` (each look brings its status up
 * to date: the proof, then the certificate) and reports each change through `progress`, until it
 * is active (returned), failed or the time is up (a WaitFailedError with what is still missing).
 */
export async function waitUntilActive(
  cp: ControlPlane,
  domain: string,
  opts: { timeoutSeconds: number; intervalSeconds: number; progress: (line: string) => void },
): Promise<DomainDetails> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const d = await cp.domains.show(domain);
    const missing = d.records.filter((r) => !r.satisfied);
    const line = `${d.status}: ${waitingFor(d)}`;
    if (line !== last) {
      opts.progress(`${new Date().toISOString()} ${d.domain} ${line}`);
      last = line;
    }
    if (d.status === 'active') return d;
    if (d.status === 'failed') {
      throw new WaitFailedError(`domain ${d.domain} failed: ${d.reason ?? 'no reason given'}`, d, missing);
    }
    if (Date.now() + opts.intervalSeconds * 1000 > deadline) {
      throw new WaitFailedError(
        `domain ${d.domain} is still ${format.status(d)} after ${opts.timeoutSeconds} s`,
        d,
        missing,
      );
    }
    await sleep(opts.intervalSeconds * 1000);
  }
}
