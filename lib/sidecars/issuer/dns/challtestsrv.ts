import type { DnsPort } from './port.ts';

/** DNS-01 through pebble-challtestsrv's management API (local runs and tests). */
export class ChallTestSrvDns implements DnsPort {
  readonly name = 'challtestsrv';
  constructor(private readonly baseUrl: string) {}

  private async post(path: string, body: unknown): Promise<void> {
    const res = await fetch(`${this.baseUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`challtestsrv ${path}: HTTP ${res.status}`);
  }

  async set(recordName: string, values: readonly string[]): Promise<void> {
    const host = `${recordName}.`;
    await this.post('/clear-txt', { host });
    for (const value of values) await this.post('/set-txt', { host, value });
  }

  async remove(recordName: string): Promise<void> {
    await this.post('/clear-txt', { host: `${recordName}.` });
  }

  /** Points a name at an address (tests: an address where nothing answers). */
  async addA(host: string, addresses: readonly string[]): Promise<void> {
    await this.post('/add-a', { host: `${host}.`, addresses });
  }

  /** A CNAME (tests: a tenant's `_acme-challenge` delegation). */
  async setCname(host: string, target: string): Promise<void> {
    await this.post('/set-cname', { host: `${host}.`, target: `${target}.` });
  }

  async clearA(host: string): Promise<void> {
    await this.post('/clear-a', { host: `${host}.` });
  }
}
