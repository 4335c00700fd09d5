/**
 * A connection's runs, newest first: the newest one with its progress bar (files done of total, elements written) and
 * the files waiting to be tried again with the reason, updated without reloading while it is active; each run's jobs
 * and tasks with state, result, element counts, item accounting (read, written, not written by reason and class with
 * examples), warnings (with counts and examples) and errors or reasons (code, message and what the code means),
 * reference files under the file that names them at any depth; Cancel for an active sync; a link to each run's
 * workflow in the Temporal UI; "Retry failed files" on a completed run with failed files, and on a retry the run it
 * retried; the elements a run changed (README.md "Run control").
 */
import {
  Anchor,
  Button,
  ExpandableBlock,
  Modal,
  ModalButtonBar,
  ModalContent,
  ProgressLinear,
  Text,
} from "@itwin/itwinui-react";
import { useEffect, useRef, useState } from "react";
import { seg } from "./api";
import { ChangesDialog, changeListText } from "./ChangesDialog";
import { notWrittenText, stateText, taskCodeText, warningText } from "./codes";
import { ErrorAlert, Hint, ResultBadge } from "./components";
import { useSession, workflowUrl } from "./context";
import { describeCounts, elementsWritten, formatDateTime, plural } from "./format";
import type { ErrorInfo, Job, ReferenceFile, Run, SourceFile, Task, TaskItems } from "./types";

export const KIND_LABEL = { sync: "Synchronization", delete: "Delete job" } as const;
export const TRIGGER_LABEL: Record<string, string> = {
  manual: "manual",
  schedule: "scheduled",
  "mapping-change": "mapping change",
  delete: "connection deleted",
  retry: "retry of failed files",
};

/** What a run was asked with, beyond its trigger: ", chosen files, forced, deletions confirmed" (or ""). */
export function runOptionsText(run: Pick<Run, "sourceFileIds" | "force" | "confirmDeletions" | "trigger">): string {
  return `${run.sourceFileIds && run.trigger !== "retry" ? `, ${plural(run.sourceFileIds.length, "chosen file")}` : ""}${run.force ? ", forced" : ""}${run.confirmDeletions ? ", deletions confirmed" : ""}`;
}

/** Files done of total and elements written (or removed, for a delete job) of a run. */
export function runProgress(run: Run): { done: number; total: number; elements: number } {
  const tasks = run.jobs.flatMap((j) => j.tasks);
  return {
    done: tasks.filter((t) => t.state === "Completed").length,
    total: tasks.length,
    elements: tasks.reduce((n, t) => n + elementsWritten(t), 0),
  };
}

export function RunProgress({ run, onChanged }: { run: Run; onChanged: () => void }) {
  const { api } = useSession();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const { done, total, elements } = runProgress(run);
  const active = run.state !== "Completed";
  const waiting = active ? run.jobs.flatMap((j) => j.tasks).filter((t) => t.state === "WaitingToRetry") : [];
  const verb = run.kind === "delete" ? "removed" : "written";
  const label = total
    ? `${done} of ${plural(total, "file")} · ${elements.toLocaleString()} elements ${verb}`
    : active
      ? "Planning: finding the files to synchronize"
      : "No file to process";
  const status = active
    ? undefined
    : run.result === "Success"
      ? "positive"
      : run.result === "Error" || run.result === "TimedOut"
        ? "negative"
        : "warning";

  async function cancel() {
    setBusy(true);
    setError(undefined);
    try {
      await api.send("POST", `/connections/${seg(run.connectionId)}/runs/${seg(run.id)}/cancel`);
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div
      className="portal-progress"
      data-testid="run-progress"
      data-run={run.id}
      data-state={run.state}
      data-result={run.result}
      data-done={done}
      data-total={total}
    >
      <div className="portal-progress-head">
        <Text variant="leading" as="h3" className="portal-h3">
          {active ? "Active run" : "Latest run"}: {KIND_LABEL[run.kind] ?? run.kind},{" "}
          {TRIGGER_LABEL[run.trigger] ?? run.trigger}
          {runOptionsText(run)}
        </Text>
        {active ? (
          <ResultBadge result="Undetermined" label={stateText(run.state)} />
        ) : (
          <ResultBadge result={run.result} />
        )}
        {active && run.kind === "sync" ? (
          <Button size="small" onClick={() => void cancel()} disabled={busy}>
            Cancel run
          </Button>
        ) : null}
      </div>
      <ProgressLinear
        value={total ? Math.round((done / total) * 100) : active ? undefined : 100}
        indeterminate={active && !total}
        status={status}
        labels={[label]}
        aria-label={`Progress of the run: ${label}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={total || 1}
        aria-valuenow={total ? done : active ? undefined : 1}
        aria-valuetext={label}
      />
      {waiting.map((t) => (
        <Text as="div" key={t.sourceFileId} className="portal-waiting" data-testid="task-waiting" data-path={t.path}>
          <strong>{t.fileName ?? t.path}</strong> is waiting to be tried again
          {t.attempts ? ` (after attempt ${t.attempts})` : ""}
          {t.reason ? (
            <>
              : <code>{t.reason.code}</code>, {t.reason.message}
              <Hint>{taskCodeText(t.reason.code)}</Hint>
            </>
          ) : (
            "."
          )}
        </Text>
      ))}
      {active && run.kind === "delete" ? (
        <Text variant="small" isMuted as="p">
          A delete job is never cancelled half way: it removes one file&apos;s data at a time until all is gone.
        </Text>
      ) : null}
      {active && run.kind === "sync" ? (
        <Text variant="small" isMuted as="p">
          Cancel ends the run after the file being written; each file is committed on its own.
        </Text>
      ) : null}
      <ErrorAlert error={error} what="Cancel" />
    </div>
  );
}

export function RunList({
  runs,
  files,
  onChanged,
  active = true,
}: {
  runs: Run[];
  /** The connection's composite models with their reference trees, to place reference tasks under their parents. */
  files: SourceFile[];
  onChanged: () => void;
  /** The connection is Active (a deleted connection's runs cannot be retried). */
  active?: boolean;
}) {
  // The run a "Retry of" link asked to show, and how many times (the same run may be asked for again).
  const [shown, setShown] = useState<{ id: string; n: number }>();
  if (runs.length === 0) return <Text as="p">No run yet: press Synchronize.</Text>;
  const context: RunContext = {
    files,
    active,
    onChanged,
    runs,
    show: (id) => setShown((s) => ({ id, n: (s?.n ?? 0) + 1 })),
  };
  return (
    <>
      <RunProgress run={runs[0]} onChanged={onChanged} />
      <h3 className="portal-h3">Run history (newest first)</h3>
      <div className="portal-runs">
        {runs.map((run, i) => (
          <RunBlock
            key={run.id}
            run={run}
            context={context}
            initiallyOpen={i === 0}
            shown={shown?.id === run.id ? shown.n : 0}
          />
        ))}
      </div>
    </>
  );
}

/** What every run block of a list shares. */
interface RunContext {
  files: SourceFile[];
  active: boolean;
  onChanged: () => void;
  /** The runs of the list (a retry's parent is shown when it is among them). */
  runs: Run[];
  /** Opens a run's block and scrolls to it. */
  show: (runId: string) => void;
}

function RunBlock({
  run,
  context,
  initiallyOpen,
  shown,
}: {
  run: Run;
  context: RunContext;
  initiallyOpen: boolean;
  /** Becomes non-zero (and grows) each time a link asks to show this run. */
  shown: number;
}) {
  const [open, setOpen] = useState(initiallyOpen);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!shown) return;
    setOpen(true);
    ref.current?.scrollIntoView({ block: "start" });
    ref.current?.querySelector<HTMLElement>("[aria-expanded]")?.focus({ preventScroll: true });
  }, [shown]);
  const { done, total } = runProgress(run);
  const title = `${KIND_LABEL[run.kind] ?? run.kind}, ${TRIGGER_LABEL[run.trigger] ?? run.trigger}${runOptionsText(run)}, ${formatDateTime(run.queuedDateTime)}`;
  const outcome = run.state === "Completed" ? run.result : stateText(run.state);
  return (
    <div ref={ref} data-run-block={run.id}>
      <ExpandableBlock
        title={title}
        caption={`${outcome} · ${done} of ${plural(total, "file")}`}
        isExpanded={open}
        onToggle={setOpen}
        status={
          run.state !== "Completed"
            ? "informational"
            : run.result === "Success"
              ? "positive"
              : run.result === "Error"
                ? "negative"
                : run.result === "PartialSuccess"
                  ? "warning"
                  : undefined
        }
        size="small"
        data-testid="run"
      >
        {open ? <RunDetails run={run} context={context} /> : null}
      </ExpandableBlock>
    </div>
  );
}

function RunDetails({ run, context }: { run: Run; context: RunContext }) {
  const { api, config } = useSession();
  const ui = workflowUrl(config, run.workflowId);
  const [changesOpen, setChangesOpen] = useState(false);
  const [retrying, setRetrying] = useState(false);
  const [retryError, setRetryError] = useState<unknown>();
  const [retryNotice, setRetryNotice] = useState<string>();
  const failed = run.jobs.flatMap((j) => j.tasks).filter((t) => t.result === "Error");
  const parent = run.retryOf ? context.runs.find((r) => r.id === run.retryOf) : undefined;
  const notKept = changeListText(run);

  async function retry() {
    setRetrying(true);
    setRetryError(undefined);
    setRetryNotice(undefined);
    try {
      const { status } = await api.send("POST", `/connections/${seg(run.connectionId)}/runs/${seg(run.id)}/retry`);
      setRetryNotice(
        status === 202
          ? "Retry queued: the new run is shown at the top."
          : "This connection already had an active run: it is shown at the top. Retry again once it has ended.",
      );
      context.onChanged();
    } catch (err) {
      setRetryError(err);
    } finally {
      setRetrying(false);
    }
  }

  return (
    <div className="portal-run-details">
      {run._links?.retry && context.active ? (
        <div className="portal-retry" data-testid="retry">
          <Button
            styleType="high-visibility"
            size="small"
            onClick={() => void retry()}
            disabled={retrying}
            aria-label={`Retry failed files of the run of ${formatDateTime(run.queuedDateTime)}`}
          >
            Retry failed files
          </Button>
          <Hint>
            Synchronizes again only the {plural(failed.length, "file")} that failed in this run (
            {failed.map((t) => t.fileName ?? t.path).join(", ")}), with their reference files; nothing else.
          </Hint>
        </div>
      ) : null}
      <ErrorAlert error={retryError} what="No retry was started" />
      {retryNotice ? (
        <Text as="p" role="status" className="portal-notice">
          {retryNotice}
        </Text>
      ) : null}
      <dl className="portal-facts">
        <dt>State</dt>
        <dd>{stateText(run.state)}</dd>
        <dt>Result</dt>
        <dd>
          <ResultBadge result={run.result} />
        </dd>
        <dt>Queued</dt>
        <dd>{formatDateTime(run.queuedDateTime)}</dd>
        {run.startDateTime ? (
          <>
            <dt>Started</dt>
            <dd>{formatDateTime(run.startDateTime)}</dd>
          </>
        ) : null}
        {run.endDateTime ? (
          <>
            <dt>Ended</dt>
            <dd>{formatDateTime(run.endDateTime)}</dd>
          </>
        ) : null}
        {run.error ? (
          <>
            <dt>Error</dt>
            <dd>
              <code>{run.error.code}</code>: {run.error.message}
            </dd>
          </>
        ) : null}
        {run.reason ? (
          <>
            <dt>Reason</dt>
            <dd>
              <code>{run.reason.code}</code>: {run.reason.message}
            </dd>
          </>
        ) : null}
        {run.retryOf ? (
          <>
            <dt>Retry of</dt>
            <dd data-testid="retry-of">
              {parent ? (
                <Anchor
                  href={`#run-${run.retryOf}`}
                  onClick={(e) => {
                    e.preventDefault();
                    context.show(parent.id);
                  }}
                >
                  the run of {formatDateTime(parent.queuedDateTime)} ({parent.result})
                </Anchor>
              ) : (
                <>
                  the run <code>{run.retryOf}</code> (no longer in this list)
                </>
              )}
            </dd>
          </>
        ) : null}
        {run.sourceFileIds && run.trigger !== "retry" ? (
          <>
            <dt>Chosen files</dt>
            <dd>{run.sourceFileIds.map((id) => context.files.find((f) => f.id === id)?.path ?? id).join(", ")}</dd>
          </>
        ) : null}
        {run.force ? (
          <>
            <dt>Forced</dt>
            <dd>files were read even when their content had not changed</dd>
          </>
        ) : null}
        {run.kind !== "delete" || notKept ? (
          <>
            <dt>Changed elements</dt>
            <dd data-testid="changes">
              {run._links?.changes ? (
                <Button
                  size="small"
                  onClick={() => setChangesOpen(true)}
                  aria-label={`Changes made by the run of ${formatDateTime(run.queuedDateTime)}`}
                >
                  Changes
                </Button>
              ) : (
                (notKept ?? (run.state === "Completed" ? "" : "listed once the run has written its files"))
              )}
            </dd>
          </>
        ) : null}
        {run.confirmDeletions ? (
          <>
            <dt>Deletions</dt>
            <dd>confirmed: the deletion guard held none of this run&apos;s files</dd>
          </>
        ) : null}
        <dt>Workflow</dt>
        <dd>
          {ui ? (
            <Anchor href={ui} target="_blank" rel="noopener noreferrer">
              {run.workflowId}
              <span className="portal-visually-hidden"> in the Temporal UI (opens in a new tab)</span>
            </Anchor>
          ) : (
            <code>{run.workflowId}</code>
          )}
        </dd>
      </dl>
      {run.jobs.map((job) => (
        <JobTasks key={job.connectorType} job={job} files={context.files} />
      ))}
      {changesOpen ? <ChangesDialog run={run} onClose={() => setChangesOpen(false)} /> : null}
    </div>
  );
}

/** A task row: the task, and for a reference file the file that names it and its depth under the composite model. */
export interface TaskRow {
  task: Task;
  /** The file (task) that names this reference file; absent for a composite model. */
  under?: Task;
  /** The composite model it comes from, when it is nested (depth 2 or more). */
  composite?: Task;
  /** 0 for a composite model, 1 for a reference it names, 2 for a reference of that reference, ... */
  depth: number;
}

/**
 * Composite tasks, each followed by the reference-file tasks under it, to any depth, in the order of the connection's
 * reference tree (`files`, from `GET /connections/{id}`): each reference file once, under the first file that names
 * it. Reference tasks the tree does not know (the mapping changed since) go under the first composite model that
 * names them (`referencedBy`), or last.
 */
export function orderedTasks(job: Job, files: SourceFile[]): TaskRow[] {
  const composites = job.tasks.filter((t) => t.phase !== "ReferenceFile");
  const references = job.tasks.filter((t) => t.phase === "ReferenceFile");
  const byId = new Map(references.map((t) => [t.sourceFileId, t]));
  const placed = new Set<Task>();
  const rows: TaskRow[] = [];
  const walk = (refs: ReferenceFile[] | undefined, parent: Task, composite: Task, depth: number) => {
    for (const r of refs ?? []) {
      const t = byId.get(r.id);
      if (!t || placed.has(t)) continue;
      placed.add(t);
      rows.push({ task: t, under: parent, depth, ...(depth > 1 ? { composite } : {}) });
      if (!r.circular) walk(r.references, t, composite, depth + 1);
    }
  };
  for (const c of composites) {
    rows.push({ task: c, depth: 0 });
    walk(files.find((f) => f.id === c.sourceFileId)?.references, c, c, 1);
    for (const r of references)
      if (!placed.has(r) && r.referencedBy?.includes(c.sourceFileId)) {
        rows.push({ task: r, under: c, depth: 1 });
        placed.add(r);
      }
  }
  for (const r of references) if (!placed.has(r)) rows.push({ task: r, depth: 1 });
  return rows;
}

/** Items in words: "37 read: 23 written, 14 not written". */
export function describeItems(items: TaskItems): string {
  const written = items.written.inserted + items.written.updated + items.written.unchanged;
  const notWritten = items.notWritten.reduce((n, g) => n + g.count, 0);
  return `${items.read.toLocaleString()} read: ${written.toLocaleString()} written, ${notWritten.toLocaleString()} not written`;
}

function JobTasks({ job, files }: { job: Job; files: SourceFile[] }) {
  const [warningsOf, setWarningsOf] = useState<Task>();
  const [itemsOf, setItemsOf] = useState<Task>();
  return (
    <div className="portal-job">
      <Text variant="leading" as="h4" className="portal-h4">
        {job.connectorType} job{" "}
        <ResultBadge
          result={job.state === "Completed" ? job.result : "Undetermined"}
          label={job.state === "Completed" ? job.result : stateText(job.state)}
        />
      </Text>
      <div className="portal-table-wrap">
        <table className="portal-table portal-tasks" aria-label={`Tasks of the ${job.connectorType} job`}>
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">State</th>
              <th scope="col">Result</th>
              <th scope="col">Elements</th>
              <th scope="col">Items</th>
              <th scope="col">Warnings</th>
              <th scope="col">Error or reason</th>
            </tr>
          </thead>
          <tbody>
            {orderedTasks(job, files).map(({ task, under, composite, depth }) => (
              <tr
                key={task.sourceFileId}
                data-testid="task"
                data-path={task.path}
                data-depth={depth}
                data-state={task.state}
              >
                <td
                  className={depth ? "portal-reference-cell" : undefined}
                  style={depth ? { paddingInlineStart: `calc(${depth} * var(--iui-size-l))` } : undefined}
                >
                  {under ? (
                    <Text variant="small" isMuted as="span" className="portal-reference-label">
                      reference file of {under.fileName ?? under.path}
                      {composite ? `, nested under ${composite.fileName ?? composite.path}` : ""}
                    </Text>
                  ) : null}
                  <span className="portal-path">{task.path}</span>
                </td>
                <td>{stateText(task.state)}</td>
                <td>
                  <ResultBadge result={task.result} />
                </td>
                <td>{describeCounts(task.elements)}</td>
                <td>
                  {task.items ? (
                    <>
                      <span className="portal-items-summary">{describeItems(task.items)}</span>{" "}
                      <Button
                        size="small"
                        onClick={() => setItemsOf(task)}
                        aria-label={`Items of ${task.path}`}
                        className="portal-items-button"
                      >
                        Items
                      </Button>
                    </>
                  ) : (
                    ""
                  )}
                </td>
                <td>
                  {task.warnings?.length ? (
                    <Button
                      size="small"
                      onClick={() => setWarningsOf(task)}
                      aria-label={`${plural(task.warnings.length, "warning")} of ${task.path}`}
                    >
                      {plural(task.warnings.length, "warning")}
                    </Button>
                  ) : (
                    "none"
                  )}
                </td>
                <td>
                  <CodeAndMessage info={task.error ?? task.reason} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {warningsOf ? <WarningsDialog task={warningsOf} onClose={() => setWarningsOf(undefined)} /> : null}
      {itemsOf ? <ItemsDialog task={itemsOf} onClose={() => setItemsOf(undefined)} /> : null}
    </div>
  );
}

/** An error or reason: its code, the API's message, and what the code means. */
function CodeAndMessage({ info }: { info: ErrorInfo | undefined }) {
  if (!info) return null;
  const meaning = taskCodeText(info.code);
  return (
    <div className="portal-code-message">
      <code>{info.code}</code>: {info.message}
      {meaning ? <Hint>{meaning}</Hint> : null}
    </div>
  );
}

function ItemsDialog({ task, onClose }: { task: Task; onClose: () => void }) {
  const items = task.items!;
  const written = items.written.inserted + items.written.updated + items.written.unchanged;
  const notWritten = items.notWritten.reduce((n, g) => n + g.count, 0);
  const title = `Items of ${task.path}`;
  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose} className="portal-wide-modal">
      <ModalContent>
        <Text as="p" data-testid="items-summary">
          <strong>{items.read.toLocaleString()}</strong> items read from the file:{" "}
          <strong>{written.toLocaleString()}</strong> written ({items.written.inserted.toLocaleString()} inserted,{" "}
          {items.written.updated.toLocaleString()} updated, {items.written.unchanged.toLocaleString()} unchanged) and{" "}
          <strong>{notWritten.toLocaleString()}</strong> not written.
          {written + notWritten === items.read
            ? " Every item read is accounted for."
            : ` ${(items.read - written - notWritten).toLocaleString()} items are not accounted for.`}
        </Text>
        <Hint>
          An item is an IFC product or an entity of a type the file&apos;s schema does not define, or a DXF entity.
          Those not written are grouped by reason and class, with a few identifiers (IFC GlobalIds, #instance numbers,
          DXF handles).
        </Hint>
        {items.notWritten.length ? (
          <div className="portal-table-wrap">
            <table className="portal-table" aria-label={`Items of ${task.path} not written`}>
              <thead>
                <tr>
                  <th scope="col">Reason</th>
                  <th scope="col">Class or entity type</th>
                  <th scope="col">Count</th>
                  <th scope="col">Examples</th>
                </tr>
              </thead>
              <tbody>
                {items.notWritten.map((g) => (
                  <tr key={`${g.code} ${g.className}`} data-testid="not-written" data-code={g.code}>
                    <td>
                      <code>{g.code}</code>
                      {notWrittenText(g.code) ? <Hint>{notWrittenText(g.code)}</Hint> : null}
                    </td>
                    <td>{g.className}</td>
                    <td>{g.count.toLocaleString()}</td>
                    <td>
                      <Examples examples={g.examples} count={g.count} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Text as="p">Every item read was written.</Text>
        )}
      </ModalContent>
      <ModalButtonBar>
        <Button styleType="high-visibility" onClick={onClose}>
          Close
        </Button>
      </ModalButtonBar>
    </Modal>
  );
}

/** A few identifiers, and how many more there are. */
function Examples({ examples, count }: { examples: string[] | undefined; count: number | undefined }) {
  if (!examples?.length) return null;
  const more = (count ?? examples.length) - examples.length;
  return (
    <span className="portal-examples">
      {examples.map((e, i) => (
        <span key={i}>
          {i > 0 ? ", " : ""}
          <code>{e}</code>
        </span>
      ))}
      {more > 0 ? ` and ${more.toLocaleString()} more` : ""}
    </span>
  );
}

function WarningsDialog({ task, onClose }: { task: Task; onClose: () => void }) {
  return (
    <Modal
      title={`Warnings of ${task.path}`}
      aria-label={`Warnings of ${task.path}`}
      isOpen
      onClose={onClose}
      className="portal-wide-modal"
    >
      <ModalContent>
        <div className="portal-table-wrap">
          <table className="portal-table" aria-label={`Warnings of ${task.path}`}>
            <thead>
              <tr>
                <th scope="col">Code</th>
                <th scope="col">Message</th>
                <th scope="col">Count</th>
                <th scope="col">About</th>
              </tr>
            </thead>
            <tbody>
              {(task.warnings ?? []).map((w, i) => (
                <tr key={i} data-testid="warning" data-code={w.code}>
                  <td>
                    <code>{w.code}</code>
                    {warningText(w.code) ? <Hint>{warningText(w.code)}</Hint> : null}
                  </td>
                  <td>
                    {w.message}
                    {w.examples?.length ? (
                      <Hint>
                        Examples: <Examples examples={w.examples} count={w.count} />
                      </Hint>
                    ) : null}
                  </td>
                  <td>{(w.count ?? 1).toLocaleString()}</td>
                  <td>{w.target ? <code>{w.target}</code> : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </ModalContent>
      <ModalButtonBar>
        <Button styleType="high-visibility" onClick={onClose}>
          Close
        </Button>
      </ModalButtonBar>
    </Modal>
  );
}
