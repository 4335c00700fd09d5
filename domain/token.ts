/**
 * The owner token rules (docs/product-rules.md "Owner and token"), pure: no I/O, no clock of their own. The owner token workflow
 * (workflows/owner-token.ts) applies them with workflow time; the API uses `visitMatters` to avoid signalling a visit that
 * cannot change anything.
 *
 * - A token is valid for `lifetimeMs` (30 days) from its issue.
 * - During its last `refreshWindowMs` (10 days) any visit by the user refreshes it: a new token valid `lifetimeMs`
 *   from the visit. A visit earlier changes nothing.
 * - When it expires, the user's scheduled runs fail (`UserNotAuthenticated`) and the user gets one email; the next
 *   visit issues a fresh token.
 */

export const DAY_MS = 24 * 60 * 60 * 1000;

export const TOKEN_DEFAULTS = {
  /** A token is valid 30 days. */
  lifetimeMs: 30 * DAY_MS,
  /** Its last 10 days: a visit then refreshes it. */
  refreshWindowMs: 10 * DAY_MS,
  /** A warning email this long before expiry when no visit refreshed it yet (0 = no warning). */
  warningBeforeMs: 3 * DAY_MS,
} as const;

export type TokenState = "Valid" | "Expired";

/** Durations of a token cycle (ms); workflow input so tests can also run scaled. */
export interface TokenDurations {
  lifetimeMs: number;
  refreshWindowMs: number;
  warningBeforeMs: number;
}

/** The token mirrored into the user's record (and, as `ownerToken`, into the connections the user owns). */
export interface OwnerTokenMirror {
  state: TokenState;
  /** ISO 8601 UTC. */
  issuedDateTime: string;
  expiresDateTime: string;
  /** Start of the refresh window (expiry − refresh window): from then on a visit refreshes the token. */
  refreshFromDateTime: string;
}

/** Durations with defaults filled in; refuses nonsense (a window longer than the lifetime, negative values). */
export function tokenDurations(input: Partial<TokenDurations> = {}): TokenDurations {
  const d = {
    lifetimeMs: input.lifetimeMs ?? TOKEN_DEFAULTS.lifetimeMs,
    refreshWindowMs: input.refreshWindowMs ?? TOKEN_DEFAULTS.refreshWindowMs,
    warningBeforeMs: input.warningBeforeMs ?? TOKEN_DEFAULTS.warningBeforeMs,
  };
  if (!(d.lifetimeMs > 0)) throw new Error("lifetimeMs must be positive");
  if (!(d.refreshWindowMs >= 0 && d.refreshWindowMs <= d.lifetimeMs))
    throw new Error("refreshWindowMs must be within the lifetime");
  if (!(d.warningBeforeMs >= 0 && d.warningBeforeMs <= d.lifetimeMs))
    throw new Error("warningBeforeMs must be within the lifetime");
  return d;
}

/** A token issued at `issuedAt` (epoch ms). */
export function issueToken(
  issuedAt: number,
  d: TokenDurations,
): { issuedAt: number; expiresAt: number; refreshFrom: number } {
  const expiresAt = issuedAt + d.lifetimeMs;
  return { issuedAt, expiresAt, refreshFrom: expiresAt - d.refreshWindowMs };
}

/** The mirror of a token (ISO strings). */
export function tokenMirror(
  t: { issuedAt: number; expiresAt: number; refreshFrom: number },
  state: TokenState,
): OwnerTokenMirror {
  return {
    state,
    issuedDateTime: new Date(t.issuedAt).toISOString(),
    expiresDateTime: new Date(t.expiresAt).toISOString(),
    refreshFromDateTime: new Date(t.refreshFrom).toISOString(),
  };
}

/**
 * Whether a visit at `now` (epoch ms) can change the token, judged from its mirror: no token yet, expired, or inside
 * the refresh window. The workflow applies the rule itself; this only spares the API a signal per request.
 */
export function visitMatters(token: OwnerTokenMirror | undefined, now: number): boolean {
  if (!token) return true;
  if (token.state === "Expired") return true;
  return now >= Date.parse(token.refreshFromDateTime);
}

/** Whether scheduled runs may run on behalf of a user with this token at `now` (epoch ms). */
export function tokenIsValid(token: OwnerTokenMirror | undefined, now: number): boolean {
  return !!token && token.state === "Valid" && Date.parse(token.expiresDateTime) > now;
}
