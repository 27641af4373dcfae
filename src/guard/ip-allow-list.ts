/** Networks whose addresses are never banned (`bans.allowList`): the operator's own, monitoring. */
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { canonicalIp, parseNetwork } from "../data/addresses.js";

export class IpAllowList {
  private constructor(
    private readonly networks: BlockList,
    readonly empty: boolean,
  ) {}

  /**
   * Parses comma-separated CIDRs (`127.0.0.0/8,::1/128`); an empty string allows nothing.
   * Throws an error naming `bans.allowList` for an entry that is not a network (`300.0.0.0/8`,
   * `10.0.0.0/40`), which the configuration schema refuses already.
   */
  static parse(list: string): IpAllowList {
    const networks = new BlockList();
    const cidrs = list
      .split(",")
      .map((c) => c.trim())
      .filter(Boolean);
    for (const cidr of cidrs) {
      const network = parseNetwork(cidr);
      if (!network) throw new Error(`bans.allowList: "${cidr}" is not an IPv4 or IPv6 network in CIDR notation`);
      networks.addSubnet(network.address, network.prefix, network.family);
    }
    return new IpAllowList(networks, cidrs.length === 0);
  }

  /** Whether `ip` (in any spelling a socket reports, IPv4-mapped included) is inside one of the networks. */
  has(ip: string): boolean {
    if (this.empty) return false;
    const canonical = canonicalIp(ip);
    if (isIPv4(canonical)) return this.networks.check(canonical, "ipv4");
    if (isIPv6(canonical)) return this.networks.check(canonical, "ipv6");
    return false;
  }
}
