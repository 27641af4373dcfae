/**
 * What PASV/EPSV/PORT/EPRT set up and the next transfer command uses: a way to obtain the data
 * socket, and a way to give back what was held if no transfer comes.
 */
import type { Socket } from "node:net";
import type { Logger } from "../observe/logger.js";
import { connectActive, type ActiveTarget } from "./active-connector.js";
import type { PassiveReservation } from "./port-pool.js";

export interface DataChannel {
  readonly mode: "passive" | "active";
  /** Resolves with the connected data socket, within `timeoutMs`. Single use. */
  open(timeoutMs: number, signal?: AbortSignal): Promise<Socket>;
  /** Frees what the channel holds (a pending passive port). Idempotent. */
  release(): void;
}

export class PassiveDataChannel implements DataChannel {
  readonly mode = "passive";
  constructor(readonly reservation: PassiveReservation) {}
  open(timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
    return this.reservation.connection(timeoutMs, signal);
  }
  release(): void {
    this.reservation.release();
  }
}

export class ActiveDataChannel implements DataChannel {
  readonly mode = "active";
  constructor(
    readonly target: ActiveTarget,
    private readonly logger: Logger,
  ) {}
  open(timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
    return connectActive(this.target, timeoutMs, this.logger, signal);
  }
  release(): void {}
}
