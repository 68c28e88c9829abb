// The chaos run's origin, a process of its own so it can be killed -9: every path answers 200
// with a small body that names it, fresh for a few seconds so the edge both hits and misses.
// `node origin-server.ts <port>` (Node's type stripping; no imports beyond node:).
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
createServer((req, res) => {
  const body = `${req.headers.host ?? ''} ${req.url ?? '/'}\n`;
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=3' });
  res.end(body);
}).listen(port, '127.0.0.1');
