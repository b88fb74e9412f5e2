/**
 * A fault-injecting HTTP proxy on 127.0.0.1 in front of local-kms (or any KMS endpoint): point
 * the service's KMS endpoint at `proxy.endpoint`, then switch what KMS "does" at runtime.
 *
 *   pass       forward every request unchanged (the default)
 *   latency    forward after `ms` of added delay
 *   reset      accept the request, then reset the TCP connection (RST: ECONNRESET at the SDK)
 *   http500    answer HTTP 500 KMSInternalException, as KMS does when it fails internally
 *   throttle   answer HTTP 400 ThrottlingException ("Rate exceeded"), body and
 *              x-amzn-ErrorType header exactly as KMS sends them
 *   error      answer any KMS JSON error: { status, type } (AccessDeniedException, ...)
 *   blackhole  accept the connection, read the request, never answer (a hung peer or a
 *              dropped route: only the client's timeouts end it)
 *   refuse     stop listening: connections are refused (KMS down, ECONNREFUSED)
 *
 * Throttling can only be produced here, by injection: no real peer available to these tests
 * throttles (local-kms has no rate limits, and real KMS cannot be made to throttle on demand),
 * so the ThrottlingException a test sees is the one this proxy writes. It mirrors what KMS
 * sends on the wire (JSON 1.1 protocol: HTTP 400, `__type`, x-amzn-ErrorType).
 *
 * A fault can be limited to some KMS operations (`only: ['GenerateDataKey']`): the others
 * pass through. Every request is recorded (operation and the fault it met) so a test can count
 * what reached "KMS", e.g. the SDK's retry attempts.
 *
 * `addRequestIds: true` is the one thing mocked on a forwarded answer: local-kms sends no
 * `x-amzn-RequestId` header, real KMS always does (CloudTrail's `requestID` for the call), and
 * the SDK reads `$metadata.requestId` from it. With the option the proxy adds a fresh UUID as
 * that header to every answer that has none, and records it with the request, so a test can
 * follow the id KMS "gave" into the service's spans and audit events instead of `unknown`.
 * The answers it writes itself (the faults) carry one either way, as KMS's errors do.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Fault =
  | { kind: 'pass' }
  | { kind: 'latency'; ms: number }
  | { kind: 'reset' }
  | { kind: 'http500' }
  | { kind: 'throttle' }
  | { kind: 'error'; status: number; type: string }
  | { kind: 'blackhole' }
  | { kind: 'refuse' };

export type FaultKind = Fault['kind'];

export interface RecordedRequest {
  /** The KMS operation (X-Amz-Target without `TrentService.`). */
  operation: string;
  /** The fault this request met ('pass' when forwarded unchanged). */
  fault: FaultKind;
  at: number;
  /** The x-amzn-RequestId the answer carried, when the proxy wrote or added it. */
  requestId?: string;
}

export interface FaultProxyOptions {
  /** Add an x-amzn-RequestId (a fresh UUID) to forwarded answers that have none (header comment). */
  addRequestIds?: boolean;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly port: number;
  /** Every request seen since start (or the last clearRecord()). */
  readonly requests: readonly RecordedRequest[];
  /** Switches the behaviour; `only` limits it to these KMS operations. */
  set(fault: Fault | 'pass' | 'reset' | 'http500' | 'throttle' | 'blackhole' | 'refuse', options?: { only?: string[] }): Promise<void>;
  /** Requests seen for one operation (or all), optionally only those that met `fault`. */
  count(operation?: string, fault?: FaultKind): number;
  clearRecord(): void;
  close(): Promise<void>;
}

/** The bodies KMS sends (JSON 1.1): `__type` and `message`. */
function kmsError(res: ServerResponse, record: RecordedRequest, status: number, type: string, message: string): void {
  const body = JSON.stringify({ __type: type, message });
  record.requestId = randomUUID();
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(body),
    'x-amzn-errortype': type,
    'x-amzn-requestid': record.requestId,
  });
  res.end(body);
}

export async function startFaultProxy(upstream: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const target = new URL(upstream);
  const upstreamAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();
  const held = new Set<ServerResponse>();
  const requests: RecordedRequest[] = [];
  let fault: Fault = { kind: 'pass' };
  let only: Set<string> | undefined;
  let listening = false;
  let port = 0;

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer, record: RecordedRequest): void => {
    const out = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host, 'content-length': String(body.length) },
        agent: upstreamAgent,
      },
      (answer) => {
        const headers = { ...answer.headers };
        if (options.addRequestIds && headers['x-amzn-requestid'] === undefined) headers['x-amzn-requestid'] = randomUUID();
        if (typeof headers['x-amzn-requestid'] === 'string') record.requestId = headers['x-amzn-requestid'];
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    out.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^TrentService\./, '') || 'unknown';
      const applies = !only || only.has(operation);
      const active: Fault = applies ? fault : { kind: 'pass' };
      const record: RecordedRequest = { operation, fault: active.kind, at: Date.now() };
      requests.push(record);
      switch (active.kind) {
        case 'pass':
        case 'refuse': // a request that slipped in on a kept-alive socket before the switch
          forward(req, res, body, record);
          return;
        case 'latency': {
          const timer = setTimeout(() => forward(req, res, body, record), active.ms);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        case 'reset':
          req.socket.resetAndDestroy();
          return;
        case 'http500':
          kmsError(res, record, 500, 'KMSInternalException', 'injected internal failure');
          return;
        case 'throttle':
          kmsError(res, record, 400, 'ThrottlingException', 'Rate exceeded');
          return;
        case 'error':
          kmsError(res, record, active.status, active.type, `injected ${active.type}`);
          return;
        case 'blackhole':
          held.add(res);
          res.on('close', () => held.delete(res));
          return;
      }
    });
  });
  // No server-side timeouts: a black hole must stay silent until the client gives up.
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (onPort: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        port = typeof address === 'object' && address ? address.port : onPort;
        listening = true;
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(0);
  const endpoint = `http://127.0.0.1:${port}`;

  return {
    endpoint,
    get port() {
      return port;
    },
    requests,
    async set(next, options = {}) {
      const resolved: Fault = typeof next === 'string' ? ({ kind: next } as Fault) : next;
      only = options.only ? new Set(options.only) : undefined;
      // Whatever was held by a black hole is released by closing it (the client saw a timeout).
      if (resolved.kind !== 'blackhole') for (const res of held) res.destroy();
      if (resolved.kind === 'refuse') {
        fault = resolved;
        await stopListening();
        return;
      }
      fault = resolved;
      if (!listening) await listen(port); // same port: clients keep their configured endpoint
    },
    count(operation, kind) {
      return requests.filter((r) => (!operation || r.operation === operation) && (!kind || r.fault === kind)).length;
    },
    clearRecord() {
      requests.length = 0;
    },
    async close() {
      for (const res of held) res.destroy();
      await stopListening();
      upstreamAgent.destroy();
    },
  };
}
