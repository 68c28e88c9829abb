import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../lib/local/ports.ts';
import { ManagedProcess } from '../../lib/local/process.ts';

const SCRIPT = fileURLToPath(new URL('./origin-server.ts', import.meta.url));

/** Starts the origin process on a free port; restart it with `ManagedProcess.start(p.spec)`. */
export async function startOrigin(dir: string): Promise<{ process: ManagedProcess; url: string }> {
  const port = await freePort();
  const process_ = await ManagedProcess.start({
    name: 'origin',
    command: process.execPath,
    args: ['--disable-warning=ExperimentalWarning', SCRIPT, String(port)],
    logFile: join(dir, 'origin.log'),
    ready: () => answers(port),
  });
  return { process: process_, url: `http://127.0.0.1:${port}` };
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
