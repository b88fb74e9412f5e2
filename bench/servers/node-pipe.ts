/**
 * The floor under the bare streaming route: a plain node:http server (no Fastify) that pipes
 * each request body back as its response. What node:http and the loopback allow on this
 * machine for one stream; the bare route's distance to it is Fastify's share.
 */
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';
import type { ReadyMessage } from './common.js';

const server = createServer((request, response) => {
  response.writeHead(200, { 'content-type': 'application/octet-stream' });
  pipeline(request, response, () => undefined);
});
server.requestTimeout = 0;

const stop = (): void => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  const message: ReadyMessage = { type: 'ready', port: address.port, pid: process.pid };
  if (process.send) process.send(message);
  else process.stdout.write(`${JSON.stringify(message)}\n`);
});
