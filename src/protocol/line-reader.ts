/**
 * Control-connection framing (RFC 959 §4.1.3, RFC 854 Telnet): splits the byte stream into
 * command lines, keeping partial lines across TCP chunks, stripping Telnet IAC sequences,
 * and capping the length of a line. UTF-8 is decoded only after a whole line is split
 * (RFC 2640), so a multi-byte character cut by a chunk boundary survives.
 */

const IAC = 0xff;
const SB = 0xfa; // sub-negotiation begins
const SE = 0xf0; // sub-negotiation ends
const WILL = 0xfb; // WILL, WONT, DO, DONT (0xfb..0xfe) carry one option byte
const CR = 0x0d;
const LF = 0x0a;

export type LineEvent = { kind: "line"; line: string } | { kind: "too-long" };

const enum TelnetState {
  Data,
  Iac,
  Option,
  Sub,
  SubIac,
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const lossyUtf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * A line's text. Bytes that are not UTF-8 (RFC 2640 asks for it; an old client may send Latin-1)
 * become NUL, which no path may hold: such a name is refused (553), never stored under a lossy
 * spelling that another name could share. A U+FFFD the client sent as UTF-8 stays what it is.
 */
function decodeLine(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return lossyUtf8.decode(bytes).replaceAll("\ufffd", "\u0000");
  }
}
const EMPTY = Buffer.alloc(0);

export class LineReader {
  /** Grows on demand up to maxLineLength: thousands of idle sessions must not each hold the maximum. */
  private buffer: Buffer = EMPTY;
  private length = 0;
  /** Set while the current line is over the limit: bytes are dropped until its LF. */
  private discarding = false;
  private telnet = TelnetState.Data;

  constructor(readonly maxLineLength: number) {
  }

  /** Forgets any partial line (after AUTH TLS, bytes sent in clear must not join the first secure line). */
  reset(): void {
    this.length = 0;
    this.discarding = false;
    this.telnet = TelnetState.Data;
  }

  /** Feeds one chunk; returns the complete lines (and overflow notices) it finished, in order. */
  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      switch (this.telnet) {
        case TelnetState.Iac:
          if (byte === IAC) {
            this.telnet = TelnetState.Data;
            this.append(IAC, events); // IAC IAC is a literal 0xFF
          } else if (byte >= WILL) this.telnet = TelnetState.Option;
          else if (byte === SB) this.telnet = TelnetState.Sub;
          else this.telnet = TelnetState.Data; // two-byte command (IP, DM, AYT…): dropped
          continue;
        case TelnetState.Option:
          this.telnet = TelnetState.Data;
          continue;
        case TelnetState.Sub:
          if (byte === IAC) this.telnet = TelnetState.SubIac;
          // The server agrees to no option, so no subnegotiation is legitimate (RFC 854): one left
          // open ends with the line, rather than swallowing every command after it.
          else if (byte === LF) {
            this.telnet = TelnetState.Data;
            this.endLine(events);
          }
          continue;
        case TelnetState.SubIac:
          this.telnet = byte === SE ? TelnetState.Data : TelnetState.Sub;
          continue;
      }
      if (byte === IAC) {
        this.telnet = TelnetState.Iac;
      } else if (byte === LF) {
        this.endLine(events);
      } else {
        this.append(byte, events);
      }
    }
    return events;
  }

  private append(byte: number, events: LineEvent[]): void {
    if (this.discarding) return;
    if (this.length === this.buffer.length && this.buffer.length < this.maxLineLength) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxLineLength, Math.max(128, this.buffer.length * 2)));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    if (this.length === this.maxLineLength) {
      // Report once, as soon as the limit is crossed, so the client hears of it without
      // us buffering a line that may never end.
      this.discarding = true;
      this.length = 0;
      events.push({ kind: "too-long" });
      return;
    }
    this.buffer[this.length++] = byte;
  }

  private endLine(events: LineEvent[]): void {
    if (this.discarding) {
      this.discarding = false;
      return;
    }
    let end = this.length;
    if (end > 0 && this.buffer[end - 1] === CR) end--; // CRLF, or a bare LF from lenient clients
    this.length = 0;
    events.push({ kind: "line", line: decodeLine(this.buffer.subarray(0, end)) });
  }
}
