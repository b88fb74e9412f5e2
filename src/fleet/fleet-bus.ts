/**
 * Admin actions for the whole fleet over Redis pub/sub. The replica that received the request
 * acts first, then publishes a command; every other replica carries it out (and audits it,
 * apply.ts) and publishes an acknowledgement; the sender waits for the replicas announced in
 * the registry, at most FLEET_CONFIRM_TIMEOUT_MS, and reports who confirmed and who did not.
 *
 * Pub/sub, not a stream: an action is only useful now (a replica that was down when it was
 * sent has an empty cache and reads its policy file at start anyway), and a missing replica
 * is named in the answer rather than silently caught up later.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { FleetAction, FleetActions, FleetOrigin, FleetReport, FleetView, ReplicaResult } from '../operations/admin/fleet.js';
import { ACK_CHANNEL, COMMAND_CHANNEL, parseMessage, type AckMessage, type CommandMessage } from './messages.js';
import type { ReplicaRegistry } from './replica-registry.js';

/** Carries out a command from another replica here; resolves with what this replica did (never rejects). */
export type ApplyFleetAction = (action: FleetAction, origin: FleetOrigin, originInstance: string) => Promise<Omit<ReplicaResult, 'instanceId'>>;

export interface FleetBusOptions {
  instanceId: string;
  confirmTimeoutMs: number;
  logger: Logger;
  apply: ApplyFleetAction;
}

interface Pending {
  waitingFor: Set<string>;
  confirmed: ReplicaResult[];
  done: () => void;
}

export class FleetBus implements FleetActions {
  readonly #pending = new Map<string, Pending>();
  #subscriber: Redis | undefined;
  #stopped = false;

  constructor(
    private readonly redis: Redis,
    private readonly registry: ReplicaRegistry,
    private readonly options: FleetBusOptions,
  ) {}

  /**
   * Subscribes (on a connection of its own: a subscribed connection can do nothing else), then
   * starts the heartbeat: a replica is announced only once it hears commands, or a broadcast
   * sent in between would wait for it and name it missing.
   */
  start(): void {
    const subscriber = this.redis.duplicate();
    this.#subscriber = subscriber;
    let announced = false;
    subscriber.on('error', () => undefined); // the main client logs Redis's state
    // On every (re)connection: with the offline queue off, a subscribe sent before the
    // connection is ready would fail, and subscribing twice to a channel is harmless.
    subscriber.on('ready', () => {
      subscriber.subscribe(COMMAND_CHANNEL, ACK_CHANNEL).then(
        () => {
          if (announced || this.#stopped) return;
          announced = true;
          this.registry.start();
        },
        (error: Error) => {
          this.options.logger.warn({ errorMessage: error.message }, 'fleet: subscribing to the fleet channels failed; retried on the next connection');
        },
      );
    });
    subscriber.on('message', (_channel: string, text: string) => this.onMessage(text));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.registry.stop();
    for (const pending of this.#pending.values()) pending.done();
    this.#subscriber?.disconnect();
    this.redis.disconnect();
  }

  async broadcast(action: FleetAction, origin: FleetOrigin, self: ReplicaResult): Promise<FleetReport> {
    const timeoutMs = this.options.confirmTimeoutMs;
    let announced: string[];
    try {
      announced = (await this.registry.list()).map((replica) => replica.instanceId);
    } catch {
      return this.degraded(self, 'Redis unreachable: the replicas could not be listed, and only this replica acted');
    }
    const expected = [...new Set([self.instanceId, ...announced])].sort();
    const id = randomUUID();
    const command: CommandMessage = { type: 'command', id, from: self.instanceId, action, origin };
    const pending: Pending = { waitingFor: new Set(expected.filter((replica) => replica !== self.instanceId)), confirmed: [self], done: () => {} };
    const finished = new Promise<void>((resolve) => (pending.done = resolve));
    this.#pending.set(id, pending);
    try {
      await this.redis.publish(COMMAND_CHANNEL, JSON.stringify(command));
    } catch {
      this.#pending.delete(id);
      return this.degraded(self, 'Redis unreachable: the action could not be sent, and only this replica acted', expected);
    }
    if (pending.waitingFor.size > 0) {
      const timer = setTimeout(pending.done, timeoutMs);
      await finished;
      clearTimeout(timer);
    }
    this.#pending.delete(id);
    const report: FleetReport = { expected, confirmed: pending.confirmed, missing: [...pending.waitingFor].sort(), timeoutMs };
    if (report.missing.length > 0) {
      this.options.logger.warn({ fleetAction: action.kind, originRequestId: origin.requestId, replicasMissing: report.missing }, 'fleet action: replicas did not confirm in time');
    }
    return report;
  }

  async view(): Promise<FleetView> {
    try {
      return { redis: 'connected', replicas: await this.registry.list() };
    } catch {
      return { redis: 'unreachable', replicas: this.registry.lastSeen };
    }
  }

  private degraded(self: ReplicaResult, reason: string, expected?: string[]): FleetReport {
    const known = expected ?? [...new Set([self.instanceId, ...this.registry.lastSeen.map((replica) => replica.instanceId)])].sort();
    this.options.logger.warn({ replicasMissing: known.filter((replica) => replica !== self.instanceId) }, `fleet action: ${reason}`);
    return {
      expected: known,
      confirmed: [self],
      missing: known.filter((replica) => replica !== self.instanceId),
      timeoutMs: this.options.confirmTimeoutMs,
      degraded: reason,
    };
  }

  private onMessage(text: string): void {
    const message = parseMessage(text);
    if (!message) {
      this.options.logger.warn('fleet: ignored a malformed message on the fleet channels');
      return;
    }
    if (message.type === 'ack') this.onAck(message);
    else if (message.from !== this.options.instanceId) void this.onCommand(message);
  }

  private onAck(message: AckMessage): void {
    const pending = this.#pending.get(message.id);
    if (!pending || message.result.instanceId === this.options.instanceId) return;
    if (pending.confirmed.some((result) => result.instanceId === message.result.instanceId)) return;
    // A replica that started after the list was read still counts: it did act.
    pending.confirmed.push(message.result);
    pending.waitingFor.delete(message.result.instanceId);
    if (pending.waitingFor.size === 0) pending.done();
  }

  private async onCommand(message: CommandMessage): Promise<void> {
    const outcome = await this.options.apply(message.action, message.origin, message.from);
    const ack: AckMessage = { type: 'ack', id: message.id, result: { instanceId: this.options.instanceId, ...outcome } };
    await this.redis.publish(ACK_CHANNEL, JSON.stringify(ack)).catch((error: Error) => {
      this.options.logger.warn({ originRequestId: message.origin.requestId, errorMessage: error.message }, 'fleet: acknowledgement not sent (Redis unreachable)');
    });
  }
}
