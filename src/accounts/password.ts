/**
 * Password hashing for account stores: argon2id in the PHC string format
 * (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), which carries its own salt and parameters.
 */
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
 * True when `password` matches `passwordHash` (a PHC string from {@link hashPassword}).
 * Rejects when the stored hash is malformed: that is corruption to surface, not a wrong password.
 */
export function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, password);
}
