/**
 * Data connection setup: PASV/EPSV reserve a port of the passive range; PORT/EPRT name the
 * client's port for an active connection (RFC 959 §4.1.2, RFC 2428).
 */
import { isIPv4 } from "node:net";
import { ActiveDataChannel, PassiveDataChannel } from "../data/data-channel.js";
import { formatPasvAddress, parseEprtArgument, parsePortArgument } from "../data/addresses.js";
import { PortPoolExhaustedError } from "../data/port-pool.js";
import { FtpError } from "../protocol/errors.js";
import { Reply } from "../protocol/replies.js";
import type { Session } from "../session/session.js";
import type { CommandSpec } from "./command.js";

async function reservePassive(session: Session): Promise<number> {
  if (!session.config.pasv.enabled) throw new FtpError(Reply.NotImplemented, "Passive mode is disabled on this server.");
  session.setDataChannel(null); // one pending reservation per session
  try {
    const reservation = await session.services.portPool.reserve(session.localIp, session.peerIp);
    session.setDataChannel(new PassiveDataChannel(reservation));
    return reservation.port;
  } catch (err) {
    if (err instanceof PortPoolExhaustedError) throw new FtpError(Reply.CantOpenData, "No passive port available for your address right now; try again.");
    throw err;
  }
}

function setActive(session: Session, verb: "PORT" | "EPRT", host: string, port: number): void {
  if (!session.config.active.enabled) throw new FtpError(Reply.NotImplemented, "Active mode is disabled on this server; use PASV or EPSV.");
  if (session.epsvAll) throw new FtpError(Reply.BadSequence, "EPSV ALL is in effect: only EPSV may set up data connections.");
  // Bounce protection (RFC 2577 §3): only the client's own address, never a privileged port.
  if (host !== session.peerIp) {
    session.log.warn({ target: host }, "PORT/EPRT to an address other than the client's refused");
    throw new FtpError(Reply.SyntaxError, `Illegal ${verb} command: address must be your own.`);
  }
  if (port < 1024) throw new FtpError(Reply.SyntaxError, `Illegal ${verb} command: port below 1024 refused.`);
  session.setDataChannel(
    new ActiveDataChannel(
      { host, port, localAddress: session.localIp, localPort: session.services.activePort },
      session.log,
    ),
  );
}

export const dataSetupCommands: CommandSpec[] = [
  {
    verb: "PASV",
    keepsRestOffset: true,
    help: "PASV: listen for a data connection (IPv4)",
    arg: "none",
    async handler(session) {
      if (session.epsvAll) throw new FtpError(Reply.BadSequence, "EPSV ALL is in effect: use EPSV.");
      if (!isIPv4(session.localIp)) throw new FtpError(Reply.NetworkProtocolNotSupported, "PASV is IPv4 only; use EPSV on IPv6.");
      const port = await reservePassive(session);
      const advertised = session.services.passiveAddress.addressFor(session.peerIp, session.localIp);
      session.reply(Reply.EnteringPassive, `Entering Passive Mode (${formatPasvAddress(advertised, port)}).`);
    },
  },
  {
    verb: "EPSV",
    keepsRestOffset: true,
    help: "EPSV [<sp> 1 | 2 | ALL]: listen for a data connection, any address family (RFC 2428)",
    arg: "optional",
    feat: "EPSV",
    async handler(session, arg) {
      const param = arg.trim().toUpperCase();
      if (param === "ALL") {
        session.epsvAll = true;
        session.reply(Reply.CommandOk, "EPSV ALL ok: only EPSV will be accepted.");
        return;
      }
      const family = isIPv4(session.localIp) ? "1" : "2";
      if (param !== "" && param !== family) {
        throw new FtpError(Reply.NetworkProtocolNotSupported, `Network protocol not supported, use (${family}).`);
      }
      const port = await reservePassive(session);
      session.reply(Reply.EnteringExtendedPassive, `Entering Extended Passive Mode (|||${port}|).`);
    },
  },
  {
    verb: "PORT",
    keepsRestOffset: true,
    help: "PORT <sp> h1,h2,h3,h4,p1,p2: connect to the client for the next transfer",
    arg: "required",
    handler(session, arg) {
      const target = parsePortArgument(arg);
      if (!target) throw new FtpError(Reply.SyntaxErrorArgs, "Illegal PORT command.");
      if (!isIPv4(session.peerIp)) throw new FtpError(Reply.NetworkProtocolNotSupported, "PORT is IPv4 only; use EPRT on IPv6.");
      setActive(session, "PORT", target.host, target.port);
      session.reply(Reply.CommandOk, session.config.pasv.enabled ? "PORT command successful. Consider using PASV." : "PORT command successful.");
    },
  },
  {
    verb: "EPRT",
    keepsRestOffset: true,
    help: "EPRT <sp> |af|address|port|: connect to the client, any address family (RFC 2428)",
    arg: "required",
    feat: "EPRT",
    handler(session, arg) {
      const target = parseEprtArgument(arg.trim());
      const ours = isIPv4(session.peerIp) ? 4 : 6;
      const unsupported = new FtpError(Reply.NetworkProtocolNotSupported, `Network protocol not supported, use (${ours === 4 ? 1 : 2}).`);
      if (!target) {
        // Well formed but for a protocol other than IPv4 and IPv6 (RFC 2428 §2): 522 names ours.
        const af = /^([!-~])(\d+)\1/.exec(arg.trim())?.[2];
        if (af !== undefined && af !== "1" && af !== "2") throw unsupported;
        throw new FtpError(Reply.SyntaxErrorArgs, "Illegal EPRT command.");
      }
      // An IPv4-mapped IPv6 address (`|2|::ffff:a.b.c.d|`) is what a client whose socket is IPv6
      // sees when it reached a dual-stack node over IPv4; the connection is IPv4 (vsftpd accepts it).
      const family = target.family === 6 && isIPv4(target.host) ? 4 : target.family;
      if (family !== ours) throw unsupported;
      setActive(session, "EPRT", target.host, target.port);
      session.reply(Reply.CommandOk, "EPRT command successful.");
    },
  },
];
