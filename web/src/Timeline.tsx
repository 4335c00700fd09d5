/**
 * A connection's timeline (README.md "Connection timeline", `GET /connections/{id}/events`): every change made to it
 * (created, renamed, schedule set, paused or resumed, owner changed, files mapped or unmapped, deletion guard and
 * failure notices changed, deleted) with who made it and when, alongside its runs, newest first, a page at a time.
 */
import { Button, Text } from "@itwin/itwinui-react";
import { useState } from "react";
import { seg } from "./api";
import { ErrorAlert } from "./components";
import { useSession } from "./context";
import { describeGuard } from "./DeletionGuard";
import { formatDateTime, plural } from "./format";
import { usePolled } from "./hooks";
import { KIND_LABEL, runOptionsText, TRIGGER_LABEL } from "./RunList";
import type { DeletionGuard, Link, TimelineEvent } from "./types";

/** Entries per page. */
export const TIMELINE_PAGE = 20;

type Person = { name?: string; email?: string } | null | undefined;
const who = (p: Person) => (p ? p.name || p.email || "someone" : "none");
const paths = (files: { path?: string }[] | undefined) => (files ?? []).map((f) => f.path ?? "").join(", ");
const modeText = (mode: unknown) => (mode === "keepData" ? "its data kept" : "with its data");

/** The `details` of the timeline's entries, by type (README.md "Connection timeline"). */
interface EventDetails {
  displayName?: string;
  sourceFiles?: { path?: string }[];
  from?: string & Person;
  to?: string & Person & DeletionGuard;
  taken?: boolean;
  description?: string;
  schedule?: { type?: string };
  note?: string;
  path?: string;
  mode?: string;
  sourceFileIds?: string[];
  kind?: string;
  trigger?: string;
  state?: string;
  result?: string;
  force?: boolean;
  confirmDeletions?: boolean;
}

/** One entry of the timeline in words ("Renamed from “Plans” to “Plans (north)”"). */
export function describeEvent(e: Pick<TimelineEvent, "kind" | "type" | "details">): string {
  const d = e.details as EventDetails;
  switch (e.type) {
    case "ConnectionCreated":
      return `Created as “${d.displayName}” with ${paths(d.sourceFiles)}`;
    case "ConnectionRenamed":
      return `Renamed from “${d.from}” to “${d.to}”`;
    case "DeletionGuardChanged":
      return `Deletion guard changed. ${describeGuard(d.to as DeletionGuard)}`;
    case "FailureNoticesChanged":
      return "Failure notices changed";
    case "ScheduleSet":
      return `Schedule set: ${d.description ?? d.schedule?.type ?? ""}`;
    case "SchedulePaused":
      return `Schedule paused${d.note ? `: ${d.note}` : ""}`;
    case "ScheduleResumed":
      return "Schedule resumed";
    case "OwnerChanged":
      return `Owner changed from ${who(d.from)} to ${who(d.to)}${d.taken ? " (taken over)" : ""}`;
    case "SourceFilesMapped":
      return `Mapped ${paths(d.sourceFiles)}`;
    case "SourceFileUnmapped": {
      const others = (d.sourceFileIds?.length ?? 1) - 1;
      return `Unmapped ${d.path}${others > 0 ? ` with ${plural(others, "reference file")}` : ""}, ${modeText(d.mode)}`;
    }
    case "ConnectionDeleted":
      return `Deleted, ${modeText(d.mode)}`;
    case "Run": {
      const kind = KIND_LABEL[d.kind as keyof typeof KIND_LABEL] ?? d.kind ?? "";
      const trigger = TRIGGER_LABEL[d.trigger ?? ""] ?? d.trigger;
      const outcome = d.state === "Completed" ? d.result : String(d.state ?? "").toLowerCase();
      return `${kind}, ${trigger}${runOptionsText({ ...d, trigger: d.trigger ?? "" })}: ${outcome}`;
    }
    default:
      return e.type;
  }
}

export function Timeline({ connectionId }: { connectionId: string }) {
  const { api } = useSession();
  const [skip, setSkip] = useState(0);
  // The first page follows the connection (changes and runs appear as they happen); older pages stay as read.
  const page = usePolled(
    () =>
      api.get<{ events: TimelineEvent[]; _links: { next?: Link } }>(
        `/connections/${seg(connectionId)}/events?$top=${TIMELINE_PAGE}&$skip=${skip}`,
      ),
    () => (skip === 0 ? 4_000 : 0),
    [api, connectionId, skip],
  );
  const data = page.data;
  return (
    <section aria-labelledby="timeline-heading" className="portal-section">
      <h2 id="timeline-heading" className="portal-h2">
        Timeline
      </h2>
      <ErrorAlert error={page.error} what="The timeline could not be read" />
      {data && data.events.length === 0 ? <Text as="p">Nothing recorded yet.</Text> : null}
      {data && data.events.length > 0 ? (
        <>
          <ol className="portal-timeline" aria-label="Changes and runs of the connection, newest first">
            {data.events.map((e) => (
              <li key={`${e.kind} ${e.id}`} data-testid="event" data-type={e.type}>
                <Text variant="small" isMuted as="span" className="portal-timeline-when">
                  {formatDateTime(e.dateTime)}
                </Text>
                <span className="portal-timeline-what">{describeEvent(e)}</span>
                <Text variant="small" isMuted as="span" className="portal-timeline-who">
                  {e.by ? `by ${who(e.by)}` : e.kind === "run" ? "" : "by someone unknown"}
                </Text>
              </li>
            ))}
          </ol>
          <div className="portal-pager" role="group" aria-label="Pages of the timeline">
            <Button size="small" disabled={skip === 0} onClick={() => setSkip(Math.max(0, skip - TIMELINE_PAGE))}>
              Newer
            </Button>
            <Button size="small" disabled={!data._links.next} onClick={() => setSkip(skip + TIMELINE_PAGE)}>
              Older
            </Button>
          </div>
        </>
      ) : null}
    </section>
  );
}
