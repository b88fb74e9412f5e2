/** Reads the first bytes of a stream without losing them: the format is told from its start. */
import { Readable } from 'node:stream';

export interface Peeked {
  /** At least `bytes` bytes, or the whole input when it is shorter. */
  head: Buffer;
  /** The whole input again, the head included. */
  rest: Readable;
}

export async function peek(input: Readable, bytes: number): Promise<Peeked> {
  const iterator = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < bytes) {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      break;
    }
    chunks.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, rest: Readable.from(replay(), { objectMode: false }) };
}
