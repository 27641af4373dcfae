/**
 * Password hashing for account stores: argon2id in the PHC string format
 * (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), which carries its own salt and parameters.
 */
import { createHmac, randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { Algorithm, hash, verify, type Options } from "@node-rs/argon2";

/**
 * The library's defaults (OWASP's minimum for argon2id), spelled out so that a change in a
 * library release cannot silently change what we store, nor drift from {@link DUMMY_HASH}.
 */
const HASH_OPTIONS: Options = {
  algorithm: Algorithm.Argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
};

/**
 * An argon2id hash of a random, discarded password, made with the same parameters as
 * {@link hashPassword}. Verifying against it when a user does not exist costs the same as a real
 * verification, so response time does not reveal which account names exist. Precomputed
 * because hashing at import would block startup; the tests check its parameters still match.
 */
export const DUMMY_HASH =
  "$argon2id$v=19$m=19456,t=2,p=1$WmtpN7J+ZdbSHi4/pMMtXg$o2qid78cNA0Q41yhncviA6n5iuNAkbqVysypq9prZ0o";

/** Hashes a password with argon2id and a fresh random salt; runs off the event loop. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, HASH_OPTIONS);
}

/**
 * Recent successful verifications. An edge's clients log in again and again with the same
 * credentials (cameras uploading every few seconds, scripts), and each argon2id verification costs
 * ~13 ms of CPU: a success is remembered for a few minutes as an HMAC of (stored hash, password)
 * under a per-process random key, so a changed password (a new stored hash) is never matched.
 * Failures are never cached; the process memory holds no password.
 */
const RECENT_TTL_MS = 5 * 60 * 1000;
const RECENT_MAX = 10_000;
const recentKey = randomBytes(32);
const recent = new Map<string, number>();

/** How many recent successes are remembered (for metrics and tests). */
export function rememberedSuccesses(): number {
  return recent.size;
}

let runs = 0;

/** argon2id verifications started so far (for metrics and tests). */
export function verificationsRun(): number {
  return runs;
}

function recentId(passwordHash: string, password: string): string {
  return createHmac("sha256", recentKey).update(passwordHash).update("\0").update(password).digest("base64");
}

/**
 * True when `password` matches `passwordHash` (a PHC string from {@link hashPassword}).
 * Rejects when the stored hash is malformed: that is corruption to surface, not a wrong password.
 * `remembered: false` checks in full, neither using nor filling the memory of recent successes:
 * for a password that must not log in (a disabled account), a fast answer would tell it is right.
 * Runs in flight are shared on every path, remembered or not, but only by attempts at the same
 * `login` name: were they shared for enabled accounts only, attempts made together would answer much
 * sooner for a name that exists than for an unknown or disabled one, and tell them apart; were they
 * shared across names, the unknown names (all checked against the one dummy hash) would share one
 * run where as many real names need one each.
 */
export async function verifyPassword(passwordHash: string, password: string, remembered = true, login = ""): Promise<boolean> {
  const id = recentId(passwordHash, password);
  if (remembered) {
    const until = recent.get(id);
    if (until !== undefined && until > Date.now()) return true;
  }
  const runId = `${login.length}:${login}:${id}`;
  let verifying = inFlight.get(runId);
  if (!verifying) {
    verifying = verifyShared(id, runId, passwordHash, password, remembered);
    inFlight.set(runId, verifying);
  }
  return verifying;
}

/**
 * Verifications under way, by login name and the same id as {@link recent}: a burst of logins with the same
 * credentials (a fleet of cameras after a restart, when nothing is remembered yet) waits for one
 * argon2id run instead of queueing one each. It is the same computation on the same input, so
 * every caller gets the answer it would have computed; the entry goes as soon as it settles, so a
 * failure is shared only with the attempts made while it was being computed, never remembered.
 */
const inFlight = new Map<string, Promise<boolean>>();

/**
 * argon2id runs on libuv's thread pool, the same pool as every file operation and kernel copy
 * (sendfile/splice) of the node. Unbounded, a burst of wrong passwords from many addresses (each
 * below the ban threshold) fills the pool's FIFO queue: a logged-in customer's RETR, LIST or CWD
 * then waits behind hundreds of ~13 ms hashes. At most this many runs are handed to the pool at
 * once, the rest wait here, in order; it also bounds their memory (19 MiB each).
 */
export const MAX_CONCURRENT_VERIFICATIONS = Math.max(1, Math.min(4, availableParallelism()));
let running = 0;
const waiting: Array<() => void> = [];

/** argon2id runs handed to the thread pool now (for metrics and tests). */
export function verificationsInProgress(): number {
  return running;
}

async function limited<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT_VERIFICATIONS) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next(); // the slot passes on: `running` stays
    else running--;
  }
}

async function verifyShared(id: string, runId: string, passwordHash: string, password: string, remember: boolean): Promise<boolean> {
  try {
    runs++;
    const matches = await limited(() => verify(passwordHash, password));
    if (matches && remember) {
      recent.delete(id); // re-insert: the Map's order is the eviction order
      recent.set(id, Date.now() + RECENT_TTL_MS);
      if (recent.size > RECENT_MAX) recent.delete(recent.keys().next().value!);
    }
    return matches;
  } finally {
    inFlight.delete(runId);
  }
}
