/**
 * A connection's runs, newest first: the newest one with its progress bar (files done of total, elements written),
 * updated without reloading while it is active; each run's jobs and tasks with state, result, counts, warnings and
 * errors (code and message), reference files under their composite model; Cancel for an active sync; a link to each
 * run's workflow in the Temporal UI.
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
import { useState } from "react";
import { seg } from "./api";
import { ErrorAlert, ResultBadge } from "./components";
import { useSession, workflowUrl } from "./context";
import { describeCounts, elementsWritten, formatDateTime, plural } from "./format";
import type { Job, Run, Task } from "./types";

const KIND_LABEL = { sync: "Synchronization", delete: "Delete job" } as const;
const TRIGGER_LABEL: Record<string, string> = {
  manual: "manual",
  schedule: "scheduled",
  "mapping-change": "mapping change",
  delete: "connection deleted",
};

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
        </Text>
        {active ? <ResultBadge result="Undetermined" label={run.state} /> : <ResultBadge result={run.result} />}
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

export function RunList({ runs, onChanged }: { runs: Run[]; onChanged: () => void }) {
  if (runs.length === 0) return <Text as="p">No run yet: press Synchronize.</Text>;
  return (
    <>
      <RunProgress run={runs[0]} onChanged={onChanged} />
      <h3 className="portal-h3">Run history (newest first)</h3>
      <div className="portal-runs">
        {runs.map((run, i) => (
          <RunBlock key={run.id} run={run} initiallyOpen={i === 0} />
        ))}
      </div>
    </>
  );
}

function RunBlock({ run, initiallyOpen }: { run: Run; initiallyOpen: boolean }) {
  const [open, setOpen] = useState(initiallyOpen);
  const { done, total } = runProgress(run);
  const title = `${KIND_LABEL[run.kind] ?? run.kind}, ${TRIGGER_LABEL[run.trigger] ?? run.trigger}, ${formatDateTime(run.queuedDateTime)}`;
  const outcome = run.state === "Completed" ? run.result : run.state;
  return (
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
      {open ? <RunDetails run={run} /> : null}
    </ExpandableBlock>
  );
}

function RunDetails({ run }: { run: Run }) {
  const { config } = useSession();
  const ui = workflowUrl(config, run.workflowId);
  return (
    <div className="portal-run-details">
      <dl className="portal-facts">
        <dt>State</dt>
        <dd>{run.state}</dd>
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
        <JobTasks key={job.connectorType} job={job} />
      ))}
    </div>
  );
}

/** Composite tasks, each followed by the reference-file tasks it names (shown once, under the first). */
function orderedTasks(job: Job): { task: Task; under?: Task }[] {
  const composites = job.tasks.filter((t) => t.phase !== "ReferenceFile");
  const references = job.tasks.filter((t) => t.phase === "ReferenceFile");
  const placed = new Set<Task>();
  const rows: { task: Task; under?: Task }[] = [];
  for (const c of composites) {
    rows.push({ task: c });
    for (const r of references)
      if (!placed.has(r) && r.referencedBy?.includes(c.sourceFileId)) {
        rows.push({ task: r, under: c });
        placed.add(r);
      }
  }
  for (const r of references) if (!placed.has(r)) rows.push({ task: r });
  return rows;
}

function JobTasks({ job }: { job: Job }) {
  const [warningsOf, setWarningsOf] = useState<Task>();
  return (
    <div className="portal-job">
      <Text variant="leading" as="h4" className="portal-h4">
        {job.connectorType} job{" "}
        <ResultBadge
          result={job.state === "Completed" ? job.result : "Undetermined"}
          label={job.state === "Completed" ? job.result : job.state}
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
              <th scope="col">Warnings</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {orderedTasks(job).map(({ task, under }) => (
              <tr key={task.sourceFileId} data-testid="task" data-path={task.path}>
                <td className={under ? "portal-reference-cell" : undefined}>
                  {under ? (
                    <Text variant="small" isMuted as="span" className="portal-reference-label">
                      reference file of {under.fileName ?? under.path}
                    </Text>
                  ) : null}
                  <span className="portal-path">{task.path}</span>
                </td>
                <td>{task.state}</td>
                <td>
                  <ResultBadge result={task.result} />
                  {task.reason ? (
                    <Text variant="small" isMuted as="span" className="portal-reason">
                      {` ${task.reason.code}`}
                    </Text>
                  ) : null}
                </td>
                <td>{describeCounts(task.elements)}</td>
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
                  {task.error ? (
                    <>
                      <code>{task.error.code}</code>: {task.error.message}
                    </>
                  ) : (
                    ""
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {warningsOf ? <WarningsDialog task={warningsOf} onClose={() => setWarningsOf(undefined)} /> : null}
    </div>
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
                <th scope="col">About</th>
              </tr>
            </thead>
            <tbody>
              {(task.warnings ?? []).map((w, i) => (
                <tr key={i}>
                  <td>
                    <code>{w.code}</code>
                  </td>
                  <td>
                    {w.message}
                    {w.count && w.count > 1 ? ` (${w.count} times)` : ""}
                  </td>
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
