/**
 * The token banner (docs/product-rules.md "Owner and token"): scheduled syncs run on their owner's behalf with the
 * owner's token, valid 30 days and renewed by any visit in its last 10 days. When the signed-in user's token is in its
 * last 10 days or expired, the banner says when it expires (or that it has), that any visit renews it, and which of
 * the user's scheduled syncs fail meanwhile. When a renewal arrives, it says so.
 */
import { Alert } from "@itwin/itwinui-react";
import { useEffect, useRef, useState } from "react";
import { useSession } from "./context";
import { formatDateTime } from "./format";
import { href } from "./hooks";
import type { Connection, TokenInfo } from "./types";

/** Whether a token is in its refresh window (its last 10 days) or expired at `now` (epoch ms). */
export function tokenNeedsAttention(token: TokenInfo | null | undefined, now: number): boolean {
  if (!token) return false;
  return tokenExpired(token, now) || now >= Date.parse(token.refreshFromDateTime);
}

const tokenExpired = (token: TokenInfo, now: number) =>
  token.state === "Expired" || Date.parse(token.expiresDateTime) <= now;

export function TokenBanner() {
  const { api, user } = useSession();
  const token = user.token;
  const now = Date.now();
  const attention = tokenNeedsAttention(token, now);
  const expired = token ? tokenExpired(token, now) : false;
  const [scheduled, setScheduled] = useState<Connection[]>();
  const [renewedUntil, setRenewedUntil] = useState<string>();
  const shown = useRef(false);

  useEffect(() => {
    if (attention) {
      shown.current = true;
      setRenewedUntil(undefined);
    } else if (shown.current && token) {
      // The banner was up and the token is fine again: a visit renewed it.
      shown.current = false;
      setRenewedUntil(token.expiresDateTime);
    }
  }, [attention, token]);

  useEffect(() => {
    if (!attention) return;
    let cancelled = false;
    api
      .get<{ connections: Connection[] }>("/connections?$top=1000")
      .then(({ connections }) => {
        if (cancelled) return;
        setScheduled(
          connections.filter(
            (c) =>
              c.owner?.id === user.id && c.status === "Active" && c.schedule.type !== "manual" && !c.schedule.paused,
          ),
        );
      })
      .catch(() => undefined);
    return () => {
      cancelled = true;
    };
  }, [api, user.id, attention]);

  if (renewedUntil && !attention)
    return (
      <Alert type="positive" className="portal-banner" onClose={() => setRenewedUntil(undefined)} role="status">
        Your owner token was renewed: valid until {formatDateTime(renewedUntil)}. Your scheduled syncs run again.
      </Alert>
    );
  if (!attention || !token) return null;

  const list =
    scheduled === undefined ? null : scheduled.length === 0 ? (
      <> None of your connections has a schedule, so no scheduled sync is affected.</>
    ) : (
      <>
        {" "}
        {expired ? "Scheduled syncs failing meanwhile:" : "Scheduled syncs that would fail:"}{" "}
        {scheduled.map((c, i) => (
          <span key={c.id}>
            {i > 0 ? ", " : ""}
            <a href={href("connections", c.id)}>{c.displayName}</a>
          </span>
        ))}
        .
      </>
    );
  return (
    <Alert type={expired ? "negative" : "warning"} className="portal-banner" role="status" data-testid="token-banner">
      {expired ? (
        <>
          Your owner token expired on {formatDateTime(token.expiresDateTime)}. Scheduled syncs run on your behalf and
          fail until it is renewed. Any visit renews it (any request you make, such as opening this portal): this visit
          asked for a new one.
        </>
      ) : (
        <>
          Your owner token expires on {formatDateTime(token.expiresDateTime)} (it is in its last 10 days). Any visit
          renews it for 30 days (any request you make, such as opening this portal): this visit asked for that.
        </>
      )}
      {list}
    </Alert>
  );
}
