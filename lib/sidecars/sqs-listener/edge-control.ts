import { Agent, request } from 'node:http';
import { MalformedEventError } from '../../core/events/errors.ts';
import type { EventOf } from '../../core/events/schema.ts';

export type PurgePayload = EventOf<'cache.purge'>['payload'];

export class EdgeControlError extends Error {
  override name = 'EdgeControlError';
}

/** The edge's authenticated control route (lua/edge/control.lua): POST /purge with the event's generation. */
export class EdgeControl {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private readonly url: URL;

  constructor(
    url: string,
    private readonly token: string,
    private readonly timeoutMs = 3000,
  ) {
    this.url = new URL('/purge', url);
  }

  /** Applies a purge; idempotent because the generation travels with it. */
  purge(p: PurgePayload): Promise<{ generation: number }> {
    const body = JSON.stringify(p);
    return new Promise((resolve, reject) => {
      const req = request(
        this.url,
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
            if (status === 200) return resolve({ generation: Number(JSON.parse(text).generation) });
            // 400: the edge says the purge itself is invalid; retrying would not help.
            if (status === 400)
              return reject(new MalformedEventError(`edge rejected the purge: ${text.trim()}`));
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
