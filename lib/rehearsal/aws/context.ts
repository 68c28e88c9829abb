import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallRecorder } from './record.ts';

/** What every service handler of the stand-in shares. */
export interface StandInContext {
  readonly account: string;
  /** Used when a request carries no SigV4 credential scope. */
  readonly defaultRegion: string;
  readonly partition: string;
  /** The base URL clients reach the stand-in at (queue URLs are built on it). */
  readonly publicUrl: string;
  readonly recorder: CallRecorder;
  /** Aborted when the stand-in stops: long polls return at once. */
  readonly stopping: AbortSignal;
}

export interface ServiceRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly body: Buffer;
  /** The region the caller signed for, else the default region. */
  readonly region: string;
  /** Who signed it (by access key id, see `AwsStandInOptions.principals`). */
  readonly principal: string;
}

export interface ServiceHandler {
  handle(r: ServiceRequest): Promise<void>;
}
