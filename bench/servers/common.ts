/**
 * What every benchmark server child does: listen on a free loopback port, tell the runner
 * which one over the IPC channel, and exit cleanly on SIGTERM (so `node --cpu-prof` writes
 * its profile).
 */
import type { FastifyInstance } from 'fastify';

export interface ReadyMessage {
  type: 'ready';
  port: number;
  pid: number;
}

export async function serve(app: FastifyInstance, cleanup: () => Promise<void> = async () => {}): Promise<void> {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    void app
      .close()
      .then(cleanup)
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`bench server: shutdown failed: ${String(error)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The runner going away (crash, Ctrl-C) must not leave a server behind.
  process.on('disconnect', stop);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('server has no TCP address');
  const message: ReadyMessage = { type: 'ready', port: address.port, pid: process.pid };
  if (process.send) process.send(message);
  else process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function fail(error: unknown): never {
  const err = error as Error;
  process.stderr.write(`bench server failed to start: ${err?.stack ?? String(error)}\n`);
  process.exit(1);
}
