/** How the portal writes dates, states and counts. */
import type { ReferenceFile, Schedule, Task } from "./types";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A UTC ISO time in the browser's time zone, e.g. "12 Mar 2026, 14:05". Empty for none. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

/** The schedule in words: "manual only", "every 4 hours", "daily at 02:30 (Europe/Berlin)", ... */
export function describeSchedule(s: Schedule | undefined): string {
  if (!s || s.type === "manual") return "Manual only";
  const text = s.description ?? s.type;
  return text.charAt(0).toUpperCase() + text.slice(1) + (s.paused ? " (paused)" : "");
}

/** iTwinUI status of a run, job or task result (for badges). */
export function resultStatus(result: string): "positive" | "negative" | "warning" | "informational" | undefined {
  switch (result) {
    case "Success":
      return "positive";
    case "Error":
    case "TimedOut":
      return "negative";
    case "PartialSuccess":
      return "warning";
    case "Undetermined":
      return "informational";
    default:
      return undefined;
  }
}

/** Elements written by a task: inserted + updated + deleted. */
export function elementsWritten(t: Pick<Task, "elements">): number {
  const e = t.elements ?? {};
  return (e.inserted ?? 0) + (e.updated ?? 0) + (e.deleted ?? 0);
}

/** Counts of a task in words: "3 inserted, 1 updated" (zero counts left out; every count the API gives is shown). */
export function describeCounts(counts: Record<string, number> | undefined): string {
  if (!counts) return "";
  const parts = Object.entries(counts)
    .filter(([, n]) => typeof n === "number" && n !== 0)
    .map(([k, n]) => `${n.toLocaleString()} ${k}`);
  return parts.length ? parts.join(", ") : "none";
}

/** A byte size for people ("413 KB"). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** "1 file", "2 files". */
export const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** Reference files and their nested references, depth first, each file once (by id). */
export function flattenReferences(
  refs: readonly ReferenceFile[] | undefined,
  seen = new Set<string>(),
): ReferenceFile[] {
  const out: ReferenceFile[] = [];
  for (const r of refs ?? []) {
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    out.push(r, ...flattenReferences(r.references, seen));
  }
  return out;
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** A UTC ISO time as a time of day with seconds in the browser's time zone ("14:05:09"). */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : timeOfDay.format(d);
}

/** A duration in milliseconds for people: "under a second", "12 s", "3 min 5 s", "1 h 20 min". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 1) return "under a second";
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}
