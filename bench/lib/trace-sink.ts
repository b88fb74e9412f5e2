/**
 * A local OTLP/HTTP trace sink for the tracing variants of case 5: it accepts every export
 * (`POST /v1/traces`), answers an empty success, and counts what arrived, so the variants pay
 * the full cost of building, batching, encoding and sending spans without a trace backend's CPU
 * on the same machine. Not a receiver to read traces from: test/ops/tracing-jaeger.test.ts does
 * that against a real Jaeger.
 */
import { createServer } from 'node:http';

export interface TraceSink {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  /** Exports and bytes received so far. */
  received(): { exports: number; bytes: number };
  close(): Promise<void>;
}

export async function startTraceSink(): Promise<TraceSink> {
  let exports = 0;
  let bytes = 0;
  const server = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => (bytes += chunk.length));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces') exports++;
      // An empty ExportTraceServiceResponse is zero bytes of protobuf.
      response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('trace sink has no TCP address');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    received: () => ({ exports, bytes }),
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
