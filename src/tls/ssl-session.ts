/**
 * The two fields of a serialized TLS session that edgeftp reads: Node hands sessions over as
 * OpenSSL's DER `SSL_SESSION` (i2d_SSL_SESSION: a SEQUENCE of version, protocol version, cipher,
 * session ID, master key, …), a format OpenSSL has kept since its first versions.
 */

/** TLS 1.3's protocol version number: its sessions resume by ticket (PSK) only, never by ID. */
export const TLS1_3_VERSION = 0x0304;

/** The protocol version and master key (TLS 1.3: the ticket's resumption secret), or null when `der` does not parse. */
export function parseSslSession(der: Buffer): { protocol: number; masterKey: Buffer } | null {
  let at = 0;
  /** Reads a tag and length (short or long form); the content's length, or null. */
  const header = (tag: number): number | null => {
    if (der[at++] !== tag) return null;
    let length = der[at++];
    if (length === undefined) return null;
    if (length & 0x80) {
      let bytes = length & 0x7f;
      if (bytes > 3) return null;
      for (length = 0; bytes > 0; bytes--) length = length * 256 + (der[at++] ?? 0);
    }
    return at + length <= der.length ? length : null;
  };
  const integer = (): number | null => {
    const length = header(0x02);
    if (length === null || length > 4) return null;
    let value = 0;
    for (let i = 0; i < length; i++) value = value * 256 + der[at++];
    return value;
  };
  const octets = (): Buffer | null => {
    const length = header(0x04);
    if (length === null) return null;
    at += length;
    return der.subarray(at - length, at);
  };
  if (header(0x30) === null || integer() === null) return null;
  const protocol = integer();
  if (protocol === null || octets() === null || octets() === null) return null;
  const masterKey = octets();
  return masterKey && masterKey.length > 0 ? { protocol, masterKey } : null;
}
