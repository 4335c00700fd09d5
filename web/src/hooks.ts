/** Small React hooks of the portal: hash routes, polled API reads. */
import { useCallback, useEffect, useRef, useState } from "react";

/** The current route: the part of `location.hash` after `#`, split into segments (`#/connections/x` → ["connections", "x"]). */
export function useHashRoute(): string[] {
  const read = () =>
    window.location.hash
      .replace(/^#\/?/, "")
      .split("/")
      .filter((s) => s !== "")
      .map((s) => decodeURIComponent(s));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

/** Goes to a portal page (`#/...`). */
export function navigate(...segments: string[]): void {
  window.location.hash = `#/${segments.map(encodeURIComponent).join("/")}`;
}

/** A link target for a portal page. */
export const href = (...segments: string[]) => `#/${segments.map(encodeURIComponent).join("/")}`;

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  /** Reads again now. */
  reload: () => Promise<void>;
}

/**
 * Reads `load()` now and again every `intervalMs(data)` milliseconds (0 or less: no polling) while the page is shown,
 * so lists and runs update without reloading the page. A read that fails keeps the last data and sets `error`.
 */
export function usePolled<T>(
  load: () => Promise<T>,
  intervalMs: (data: T | undefined) => number,
  deps: unknown[],
): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const loadRef = useRef(load);
  loadRef.current = load;
  const intervalRef = useRef(intervalMs);
  intervalRef.current = intervalMs;
  const generation = useRef(0);

  const reload = useCallback(async () => {
    const mine = generation.current;
    try {
      const value = await loadRef.current();
      if (mine !== generation.current) return;
      setData(value);
      setError(undefined);
    } catch (err) {
      if (mine !== generation.current) return;
      setError(err as Error);
    }
  }, []);

  useEffect(() => {
    generation.current++;
    setData(undefined);
    setError(undefined);
    let stopped = false;
    let timer: number | undefined;
    let latest: T | undefined;
    const tick = async () => {
      const mine = generation.current;
      try {
        latest = await loadRef.current();
        if (stopped || mine !== generation.current) return;
        setData(latest);
        setError(undefined);
      } catch (err) {
        if (stopped || mine !== generation.current) return;
        setError(err as Error);
      }
      const next = intervalRef.current(latest);
      if (!stopped && next > 0) timer = window.setTimeout(() => void tick(), next);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer !== undefined) window.clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, reload };
}
