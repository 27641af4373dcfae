/**
 * TLS uploads into a local file without a buffer per record. A `TLSSocket` read as a stream hands
 * every decrypted record (up to 16 KiB) over in a fresh buffer; during a large FTPS upload their
 * external memory kept V8's old-generation marking running for the whole transfer (70–130
 * mark-compacts per GiB, see docs/performance.md). Node can decrypt into one buffer of the
 * caller's (`onread`), but offers that only to sockets it connects itself, not to a server-side
 * `TLSSocket` wrapping an accepted connection. The stream machinery behind `onread` is the same
 * for both, so this module switches an accepted TLS socket to it; where this Node does not have
 * it, {@link tlsReceiveAvailable} is false and uploads are streamed as before.
 */
import { write } from "node:fs";
import { Socket, type SocketConstructorOpts } from "node:net";
import type { TLSSocket } from "node:tls";
import type { LocalFile } from "../storage/types.js";
import { QUOTA_STEP, type UploadAllowance } from "./upload-allowance.js";

/** Where a socket keeps its `onread` buffer and callback: symbols of Node's, found on a probe socket. */
const onreadSymbols = (() => {
  // Node's constructor takes `onread` as `net.connect` does; its types declare it for connect only.
  const probe = new Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as SocketConstructorOpts);
  const found = new Map(Object.getOwnPropertySymbols(probe).map((symbol) => [symbol.description, symbol]));
  probe.destroy();
  const buffer = found.get("kBuffer");
  const callback = found.get("kBufferCb");
  return buffer && callback ? { buffer, callback } : null;
})();

/** Whether TLS uploads can be received into reused buffers on this Node. */
export const tlsReceiveAvailable = onreadSymbols !== null;

/** Decrypted records land here first (one record at most: 16 KiB), then are gathered. */
const RECORD_BUFFER = 16 * 1024;
/** Gathered bytes go to the file in writes of this size; two per upload, reused. */
const WRITE_CHUNK = 1024 * 1024;

/**
 * Receives the rest of a TLS upload into `file` from its position: records are decrypted into one
 * buffer, gathered into two reused ones, and written while the other fills; reading pauses while
 * both wait for the disk. Within the allowance (if any) like a spliced upload: the bytes that fit
 * are written and the upload is refused. Resolves with the bytes written at the client's EOF;
 * rejects when the socket fails or closes first (abort, stall) or a write fails. Settles only once
 * no write is running on the descriptor.
 */
export function receiveTlsToFile(socket: TLSSocket, file: LocalFile, allowance: UploadAllowance | null): Promise<number> {
  const symbols = onreadSymbols;
  if (!symbols) return Promise.reject(new Error("TLS receive into a buffer is not available"));
  // Ended already (an empty upload, its EOF in before the file was opened): nothing to write.
  if (socket.readableEnded) return Promise.resolve(0);
  if (socket.destroyed) return Promise.reject(prematureClose());
  return new Promise((resolve, reject) => {
    // The second buffer only once the first goes to the disk: most uploads are smaller than one.
    const spare: Buffer[] = [];
    let gathering: Buffer = Buffer.allocUnsafeSlow(WRITE_CHUNK);
    let gathered = 0;
    /** Bytes accepted (gathered or written), and the quota room reserved so far. */
    let received = 0;
    let room = allowance ? 0 : Infinity;
    let writesPending = 0;
    let writing: Promise<void> = Promise.resolve();
    let failure: Error | null = null;
    let ended = false;
    let settled = false;

    const settle = () => {
      if (settled || writesPending > 0 || (!failure && !ended)) return;
      settled = true;
      socket.off("end", onEnd).off("error", onError).off("close", onClose);
      if (failure) reject(failure);
      else resolve(received);
    };
    const fail = (err: Error) => {
      failure ??= err;
      settle();
    };
    const flush = () => {
      if (gathered === 0 || failure) return;
      const buffer = gathering;
      const length = gathered;
      const position = file.position + received - gathered;
      writesPending++;
      writing = writing.then(() => writeAll(file.fd, buffer, length, position)).then(
        () => {
          writesPending--;
          spare.push(buffer);
          if (!settled && !failure && !ended && socket.isPaused()) socket.resume();
          settle();
        },
        (err: Error) => {
          writesPending--;
          fail(err);
          socket.destroy();
        },
      );
      gathering = spare.pop() ?? Buffer.allocUnsafeSlow(WRITE_CHUNK);
      gathered = 0;
    };
    const take = (chunk: Buffer, length: number): boolean => {
      if (failure) return false;
      while (allowance && received + length > room) {
        const more = allowance.allow(QUOTA_STEP);
        room += more;
        if (more === 0) break;
      }
      const fits = Math.min(length, room - received);
      for (let offset = 0; offset < fits; ) {
        const copied = chunk.copy(gathering, gathered, offset, fits);
        gathered += copied;
        received += copied;
        offset += copied;
        if (gathered === gathering.length) flush();
      }
      if (fits < length) {
        flush();
        fail(allowance!.refuse());
        return false;
      }
      // Both buffers waiting for the disk: stop reading (records already decrypted still arrive).
      if (writesPending >= 2) socket.pause();
      return true;
    };
    const onEnd = () => {
      flush();
      ended = true;
      settle();
    };
    // Once the client's EOF is in, the upload is whole: what happens to the socket after is not its
    // concern. Before it, what was gathered (authenticated records) is written first: an interrupted
    // upload keeps what arrived, as a plain one does, for the client to resume from.
    const onError = (err: Error) => {
      if (ended) return;
      flush();
      fail(err);
    };
    const onClose = () => {
      if (ended) return;
      flush();
      fail(prematureClose());
    };

    socket.on("end", onEnd).on("error", onError).on("close", onClose);
    const record = Buffer.allocUnsafeSlow(RECORD_BUFFER);
    const target = socket as unknown as Record<symbol, unknown>;
    target[symbols.buffer] = record;
    target[symbols.callback] = (length: number, buffer: Buffer) => take(buffer, length);
    (socket as unknown as { _handle: { useUserBuffer(buffer: Buffer): void } })._handle.useUserBuffer(record);
    // What the stream read before the switch (the client sends right after the 150) comes first.
    for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) take(chunk, chunk.length);
    if (socket.readableEnded) onEnd();
    else socket.resume();
  });
}

function prematureClose(): Error {
  return Object.assign(new Error("data connection closed before the upload ended"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
}

/** write(2) of `length` bytes at `position` on the thread pool, looping over short writes. */
async function writeAll(fd: number, buffer: Buffer, length: number, position: number): Promise<void> {
  for (let offset = 0; offset < length; ) {
    const written = await new Promise<number>((resolve, reject) =>
      write(fd, buffer, offset, length - offset, position + offset, (err, bytes) => (err ? reject(err) : resolve(bytes))),
    );
    offset += written;
  }
}
