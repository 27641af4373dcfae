/**
 * TYPE A conversion (RFC 959 §3.1.1.1): the wire uses CRLF, the disk uses LF. Both transforms
 * carry the one byte of state a chunk boundary can split.
 */
import { Transform, type TransformCallback } from "node:stream";

const CR = 0x0d;
const LF = 0x0a;

/** LF → CRLF for downloads; an LF already preceded by CR is left alone. */
export class AsciiEncoder extends Transform {
  private lastWasCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let extra = 0;
    let prev = this.lastWasCr;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] === LF && !prev) extra++;
      prev = chunk[i] === CR;
    }
    if (extra === 0) {
      this.lastWasCr = prev;
      done(null, chunk);
      return;
    }
    const out = Buffer.allocUnsafe(chunk.length + extra);
    let j = 0;
    prev = this.lastWasCr;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === LF && !prev) out[j++] = CR;
      out[j++] = b;
      prev = b === CR;
    }
    this.lastWasCr = prev;
    done(null, out);
  }
}

/** CRLF → LF for uploads; a CR not followed by LF is kept. */
export class AsciiDecoder extends Transform {
  private pendingCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let j = 0;
    let i = 0;
    if (this.pendingCr && chunk.length > 0) {
      this.pendingCr = false;
      if (chunk[0] !== LF) out[j++] = CR;
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === CR) {
        if (i + 1 === chunk.length) {
          this.pendingCr = true; // decided by the next chunk
          continue;
        }
        if (chunk[i + 1] === LF) continue;
      }
      out[j++] = b;
    }
    done(null, out.subarray(0, j));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.pendingCr ? Buffer.from([CR]) : undefined);
  }
}
