/**
 * Owner tokens with durable timers (docs/product-rules.md "Owner and token"; rules in domain/token.ts). Deterministic code only.
 *
 * `ownerTokenWorkflow`: one per user, id `owner-token/<userId>`, one run per token (continue-as-new when a new token
 * is issued). It mirrors the token into the user's record (the API and the schedule activities read the mirror), then
 * - sleeps until the refresh window opens (expiry − 10 days); visits before that change nothing;
 * - in the window, races a `visit` signal against expiry (with an optional warning email a few days before): a visit
 *   issues a new token valid 30 days from the visit;
 * - at expiry, mirrors `Expired`, emails the owner once, and waits for the next visit, which issues a fresh token.
 * The API sends `visit` (signal-with-start) only when a visit can matter (see `visitMatters`).
 */
import {
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
} from "@temporalio/workflow";
import type { OwnerActivities } from "../activities/owners";
import { issueToken, tokenDurations, tokenMirror, type TokenDurations, type TokenState } from "../domain/token";

export interface OwnerTokenInput extends Partial<TokenDurations> {
  userId: string;
  /** The token of this run (epoch ms), carried over by continue-as-new; absent on the first start: issued now. */
  token?: { issuedAt: number; expiresAt: number };
}

export interface OwnerVisit {
  /** ISO 8601 UTC of the request (information only; workflow time decides). */
  at?: string;
}

export interface OwnerTokenView {
  userId: string;
  state: TokenState;
  issuedAt: string;
  expiresAt: string;
  refreshFrom: string;
  /** Visits received in this run, including those before the refresh window (which change nothing). */
  visits: number;
}

export const ownerVisitSignal = defineSignal<[OwnerVisit?]>("visit");
export const ownerTokenQuery = defineQuery<OwnerTokenView>("ownerToken");

export const ownerTokenWorkflowId = (userId: string) => `owner-token/${userId}`;

const owners = proxyActivities<OwnerActivities>({
  startToCloseTimeout: "1 minute",
  retry: { initialInterval: "2 seconds", backoffCoefficient: 2, maximumInterval: "10 minutes" },
});

export async function ownerTokenWorkflow(input: OwnerTokenInput): Promise<void> {
  const durations = tokenDurations(input);
  const start = Date.now();
  const token = input.token
    ? { ...input.token, refreshFrom: input.token.expiresAt - durations.refreshWindowMs }
    : issueToken(start, durations);
  let state: TokenState = "Valid";
  let visits = 0;
  /** Visits that count: received inside the refresh window or after expiry. */
  let counted = 0;
  let inWindow = false;

  setHandler(ownerVisitSignal, () => {
    visits++;
    if (inWindow) counted++;
  });
  setHandler(ownerTokenQuery, () => ({
    userId: input.userId,
    state,
    issuedAt: new Date(token.issuedAt).toISOString(),
    expiresAt: new Date(token.expiresAt).toISOString(),
    refreshFrom: new Date(token.refreshFrom).toISOString(),
    visits,
  }));

  // The Temporal UI's "current details" (a query, not a command): the token this run tracks.
  const details = (what: string) =>
    setCurrentDetails(
      `Owner token of user \`${input.userId}\`: ${what}; issued ${new Date(token.issuedAt).toISOString()}, expires ${new Date(token.expiresAt).toISOString()}, refreshed by a visit from ${new Date(token.refreshFrom).toISOString()}`,
    );
  details("Valid");
  await owners.mirrorOwnerToken({ userId: input.userId, token: tokenMirror(token, "Valid") });

  // Before the refresh window: visits change nothing.
  const untilWindow = token.refreshFrom - Date.now();
  if (untilWindow > 0) await sleep(untilWindow);
  inWindow = true;
  details("Valid, in its refresh window (a visit refreshes it)");

  // In the window: a visit refreshes; without one, a warning some days before expiry, then expiry.
  let visited = false;
  const warnAt = token.expiresAt - durations.warningBeforeMs;
  if (durations.warningBeforeMs > 0 && warnAt > Date.now()) {
    visited = await condition(() => counted > 0, warnAt - Date.now());
    if (!visited)
      await owners.notifyTokenExpiring({
        userId: input.userId,
        expiresDateTime: new Date(token.expiresAt).toISOString(),
      });
  }
  if (!visited) {
    const untilExpiry = token.expiresAt - Date.now();
    visited = untilExpiry > 0 ? await condition(() => counted > 0, untilExpiry) : counted > 0;
  }
  if (!visited) {
    state = "Expired";
    details("Expired (the owner's next request issues a new token)");
    await owners.mirrorOwnerToken({ userId: input.userId, token: tokenMirror(token, "Expired") });
    await owners.notifyTokenExpired({ userId: input.userId, expiresDateTime: new Date(token.expiresAt).toISOString() });
    await condition(() => counted > 0);
  }

  // A visit that counts: the next token, from now, in a fresh run (one run per token keeps histories short).
  const now = Date.now();
  await continueAsNew<typeof ownerTokenWorkflow>({
    userId: input.userId,
    lifetimeMs: durations.lifetimeMs,
    refreshWindowMs: durations.refreshWindowMs,
    warningBeforeMs: durations.warningBeforeMs,
    token: { issuedAt: now, expiresAt: now + durations.lifetimeMs },
  });
}
