/**
 * Which IPv4 address a PASV reply advertises. Edges sit behind NAT, so the control connection's
 * local address is often not what clients can reach: the configured public address (an IP, or a
 * hostname resolved at start and on reload) wins, and per-client-network overrides let clients
 * inside a private network get the private address. EPSV (RFC 2428) carries no address at all.
 */
import { lookup } from "node:dns/promises";
import { BlockList, isIPv4 } from "node:net";
import { ConfigError } from "../config/load.js";
import type { Logger } from "../observe/logger.js";
import { parseNetwork } from "./addresses.js";

interface Override {
  network: BlockList;
  address: string;
}

/** RFC 1918, loopback, link-local, CGNAT and unspecified: addresses a public client cannot reach. */
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["100.64.0.0", 10],
  ["0.0.0.0", 8],
] as const) {
  NON_PUBLIC.addSubnet(net, bits, "ipv4");
}

export function isPublicIPv4(ip: string): boolean {
  return isIPv4(ip) && !NON_PUBLIC.check(ip, "ipv4");
}

export class PassiveAddressPolicy {
  private publicAddress = "";
  private readonly overrides: Override[];
  private warned = false;

  constructor(
    private readonly configured: string,
    overrides: string,
    private readonly logger: Logger,
  ) {
    this.overrides = overrides
      .split(",")
      .map((rule) => rule.trim())
      .filter(Boolean)
      .map((rule) => {
        // The configuration schema checked the rule's shape.
        const [cidr, address] = rule.split("=");
        const { address: net, prefix } = parseNetwork(cidr)!;
        const network = new BlockList();
        network.addSubnet(net, prefix, "ipv4");
        return { network, address };
      });
  }

  /** Resolves a configured hostname (at start, and again on reload). Throws when it has no IPv4 address. */
  async refresh(): Promise<void> {
    if (!this.configured || isIPv4(this.configured)) {
      this.publicAddress = this.configured;
      return;
    }
    let address: string;
    try {
      ({ address } = await lookup(this.configured, { family: 4 }));
    } catch (err) {
      throw new ConfigError(`pasv.address: cannot resolve ${this.configured} to an IPv4 address (${(err as NodeJS.ErrnoException).code})`);
    }
    if (!isIPv4(address)) throw new ConfigError(`pasv.address: ${this.configured} resolves to ${address}, not an IPv4 address`);
    if (address !== this.publicAddress) this.logger.info({ host: this.configured, address }, "passive address resolved");
    this.publicAddress = address;
  }

  /** The address to put in a 227 reply for this client, on a control connection to `localIp`. */
  addressFor(clientIp: string, localIp: string): string {
    for (const o of this.overrides) if (o.network.check(clientIp, "ipv4")) return o.address;
    const address = this.publicAddress || localIp;
    if (!this.warned && isPublicIPv4(clientIp) && !isPublicIPv4(address)) {
      this.warned = true;
      this.logger.warn(
        { client: clientIp, advertised: address },
        "PASV advertises a non-public address to a client from a public one; set pasv.address (--pasv-address) to the node's public address",
      );
    }
    return address;
  }
}
