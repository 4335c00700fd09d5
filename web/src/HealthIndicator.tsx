/**
 * The service's health in the header, from `GET /health` (no key needed; README.md "API" and "Crashes, full disks and
 * restarts"): ok, degraded (low disk space, with the free space of each filesystem below the threshold) or unavailable
 * (a check that failed, or no answer at all). It asks gently: every minute while ok, every 15 s otherwise, never while
 * the tab is hidden (it asks again when the tab is shown), and when the person presses "Check now".
 */
import { Button, Popover, Text } from "@itwin/itwinui-react";
import { useCallback, useEffect, useRef, useState } from "react";
import { formatTime } from "./format";
import type { Health } from "./types";

/** Milliseconds between two reads of `/health`: a minute while ok, 15 s while something is wrong. */
export const healthInterval = (h: Health | undefined) => (h?.status === "ok" ? 60_000 : 15_000);

interface Reading {
  health: Health;
  at: string;
}

/** Reads `/health`; no answer (or one that is not the health JSON) becomes "unavailable" with the reason. */
export async function readHealth(): Promise<Health> {
  try {
    const res = await fetch("/health", {
      cache: "no-store",
      credentials: "omit",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json().catch(() => undefined)) as Health | undefined;
    if (body && typeof body.status === "string" && body.checks) return body;
    return { status: "unavailable", checks: { api: `the API answered ${res.status} without its health` } };
  } catch (err) {
    return { status: "unavailable", checks: { api: `the API does not answer (${(err as Error).message})` } };
  }
}

/** The checks of `/health` by name, as people call them. */
const CHECK_NAMES: Record<string, string> = { mongodb: "Database", temporal: "Temporal", worker: "Worker", api: "API" };

const LABEL = { ok: "Service OK", degraded: "Service degraded", unavailable: "Service unavailable" } as const;

/** "12,345 MiB" */
const mib = (n: number) => `${n.toLocaleString()} MiB`;

export function HealthIndicator() {
  const [reading, setReading] = useState<Reading>();
  const [open, setOpen] = useState(false);
  const [checking, setChecking] = useState(false);
  const timer = useRef<number | undefined>(undefined);

  const check = useCallback(async () => {
    window.clearTimeout(timer.current);
    setChecking(true);
    const health = await readHealth();
    setChecking(false);
    setReading({ health, at: new Date().toISOString() });
    if (document.visibilityState !== "hidden")
      timer.current = window.setTimeout(() => void check(), healthInterval(health));
  }, []);

  useEffect(() => {
    void check();
    const onVisibility = () => {
      if (document.visibilityState === "hidden") window.clearTimeout(timer.current);
      else void check();
    };
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      document.removeEventListener("visibilitychange", onVisibility);
      window.clearTimeout(timer.current);
    };
  }, [check]);

  const status = reading?.health.status;
  const label = status ? LABEL[status] : "Service status";
  const lowDisks = reading?.health.disk?.filesystems.filter((f) => f.low) ?? [];
  const failing = Object.entries(reading?.health.checks ?? {}).filter(([k, v]) => v !== "ok" && k !== "disk");

  const content = (
    <div className="portal-health-panel" data-testid="health-details">
      <Text variant="leading" as="h2" className="portal-health-title">
        {label}
      </Text>
      {status === "ok" ? (
        <Text as="p">The database, Temporal and a worker answer, and there is enough disk space.</Text>
      ) : null}
      {status === "degraded" ? (
        <>
          <Text as="p">Low disk space: synchronizations may wait and changes may be refused until space is freed.</Text>
          <ul className="portal-health-list">
            {lowDisks.map((f) => (
              <li key={f.path}>
                <code>{f.path}</code>: {mib(f.freeMb)} free of {mib(f.totalMb)} (less than{" "}
                {mib(reading?.health.disk?.minFreeMb ?? 0)})
              </li>
            ))}
            {lowDisks.length === 0 && reading?.health.checks.disk ? <li>{reading.health.checks.disk}</li> : null}
          </ul>
        </>
      ) : null}
      {status === "unavailable" ? (
        <>
          <Text as="p">The service cannot synchronize now. What does not answer:</Text>
          <ul className="portal-health-list">
            {failing.map(([k, v]) => (
              <li key={k}>
                <strong>{CHECK_NAMES[k] ?? k}</strong>: {v}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {reading ? (
        <Text variant="small" isMuted as="p">
          Checked at {formatTime(reading.at)}; checked again {status === "ok" ? "every minute" : "every 15 seconds"}.
        </Text>
      ) : null}
      <Button size="small" onClick={() => void check()} disabled={checking}>
        Check now
      </Button>
    </div>
  );

  return (
    <>
      <Popover content={content} visible={open} onVisibleChange={setOpen} placement="bottom-end" applyBackground>
        <Button
          styleType="borderless"
          className="portal-health"
          data-testid="health"
          data-status={status ?? "unknown"}
          aria-label={`${label}: details`}
        >
          <span className={`portal-health-dot portal-health-${status ?? "unknown"}`} aria-hidden="true" />
          <span className="portal-health-label">{label}</span>
        </Button>
      </Popover>
      <span className="portal-visually-hidden" role="status">
        {status && status !== "ok" ? label : ""}
      </span>
    </>
  );
}
