/**
 * The text form of a stream ciphertext, `ev2:` + base64url of its bytes, as `ev1:` is for
 * format v1: what a browser form, a JSON document or a terminal can carry. A binary stream
 * starts with its version byte 0x02, never with `e`, so the two forms cannot be confused:
 * TextFormDecoder passes binary streams through untouched and decodes text ones on the fly
 * (ASCII whitespace ignored, constant memory), so POST /v1/decrypt/stream takes either.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { EnvelopeError } from './errors.js';

export const STREAM_TEXT_PREFIX = 'ev2:';

const PREFIX = Buffer.from(STREAM_TEXT_PREFIX, 'latin1');
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const WHITESPACE = /[\t\n\r ]/g;

/** The text form of a whole stream ciphertext (small streams only: examples, tests). */
export function toStreamText(stream: Buffer): string {
  return STREAM_TEXT_PREFIX + stream.toString('base64url');
}

export class TextFormDecoder extends Transform {
  /** Bytes seen before the form is known (fewer than the prefix). */
  private head = Buffer.alloc(0);
  private mode: 'unknown' | 'binary' | 'text' = 'unknown';
  /** Base64url characters not yet decoded (a group of four decodes to three bytes). */
  private carry = '';

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.mode === 'unknown') {
        this.head = Buffer.concat([this.head, chunk]);
        if (this.head.length < PREFIX.length && PREFIX.subarray(0, this.head.length).equals(this.head)) return callback();
        chunk = this.head;
        this.head = Buffer.alloc(0);
        this.mode = chunk.subarray(0, PREFIX.length).equals(PREFIX) ? 'text' : 'binary';
        if (this.mode === 'text') chunk = chunk.subarray(PREFIX.length);
      }
      if (this.mode === 'binary') return callback(null, chunk);
      this.decode(chunk.toString('latin1'), false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.mode === 'unknown' && this.head.length > 0) this.push(this.head);
      if (this.mode === 'text') this.decode('', true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private decode(text: string, last: boolean): void {
    const characters = this.carry + text.replace(WHITESPACE, '');
    if (!BASE64URL.test(characters)) throw new EnvelopeError('MalformedCiphertext', 'the ev2: text form holds a character outside base64url');
    const usable = last ? characters.length : characters.length - (characters.length % 4);
    if (last && usable % 4 === 1) throw new EnvelopeError('MalformedCiphertext', 'the ev2: text form is not whole base64url');
    this.carry = characters.slice(usable);
    if (usable > 0) this.push(Buffer.from(characters.slice(0, usable), 'base64url'));
  }
}
