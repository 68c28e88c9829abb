import { Agent, request } from 'node:http';
import { MalformedEventError } from '../../core/events/errors.ts';
import type { EventOf } from '../../core/events/schema.ts';

export type PurgePayload = EventOf<'cache.purge'>['payload'];

export class EdgeControlError extends Error {
  override name = 'EdgeControlError';
}

/** The edge's authenticated control routes (lua/edge/control.lua): /purge and /certs/forget. */
export class EdgeControl {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private readonly url: URL;
  private readonly forgetUrl: URL;

  constructor(
    url: string,
    private readonly token: string,
    private readonly timeoutMs = 3000,
  ) {
    this.url = new URL('/purge', url);
    this.forgetUrl = new URL('/certs/forget', url);
  }

  /** Applies a purge; idempotent because the generation travels with it. */
  async purge(p: PurgePayload): Promise<{ generation: number }> {
    const text = await this.post(this.url, p);
    return { generation: Number(JSON.parse(text).generation) };
  }

  /** Drops the edge's cached copy of a certificate so the next handshake reads Redis. */
  async forgetCert(domain: string): Promise<void> {
    await this.post(this.forgetUrl, { domain });
  }

  private post(url: URL, doc: unknown): Promise<string> {
    const body = JSON.stringify(doc);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: {
            authorization: `Bearer ${this.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status === 200) return resolve(text);
            // 400: the edge says the request itself is invalid; retrying would not help.
            if (status === 400)
              return reject(new MalformedEventError(`edge rejected ${url.pathname}: ${text.trim()}`));
            reject(new EdgeControlError(`edge control answered ${status}: ${text.trim().slice(0, 200)}`));
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new EdgeControlError(`edge control timed out after ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
