/**
 * A connection: its facts (source, owner and token, schedule and next run, GCS, deletion guard), its mapping
 * (composite models with their reference files, nested to any depth, cycles marked), the files the deletion guard held
 * in the latest run (with "Synchronize and apply deletions"), its runs (the newest with a live progress bar, then the
 * history, with Retry failed files and the elements each run changed), its timeline (changes and runs, newest first),
 * and the changes its owner can make: synchronize (all files, or chosen files, forced, with a dry run first), rename,
 * schedule, owner, deletion guard, add and unmap composite models, delete. A connection that is not found or not shared with the user gets a page that says so.
 */
import { Anchor, Breadcrumbs, Button, Text } from "@itwin/itwinui-react";
import { useState } from "react";
import { seg } from "../api";
import { ErrorAlert, Hint, PageHeading, StatusBadge } from "../components";
import { useSession } from "../context";
import {
  AddFilesDialog,
  DeleteDialog,
  OwnerDialog,
  RenameDialog,
  ScheduleDialog,
  tokenText,
  UnmapDialog,
} from "../dialogs";
import { DeletionGuardDialog, describeGuard, HeldFiles } from "../DeletionGuard";
import { describeSchedule, formatDateTime } from "../format";
import { href, usePolled } from "../hooks";
import { RunList } from "../RunList";
import { SyncDialog } from "../SyncDialog";
import { Timeline } from "../Timeline";
import type { Connection, IModel, ReferenceFile, Run, SourceFile } from "../types";
import { isNotFound, NotSharedPage } from "./NotFoundPage";

type DialogName = "sync" | "rename" | "schedule" | "owner" | "delete" | "add" | "guard" | { unmap: SourceFile };

export function ConnectionPage({ connectionId }: { connectionId: string }) {
  const { api, user } = useSession();
  const [dialog, setDialog] = useState<DialogName>();
  const [runError, setRunError] = useState<unknown>();
  const [runNotice, setRunNotice] = useState<string>();

  const page = usePolled(
    async () => {
      const [{ connection }, { runs }] = await Promise.all([
        api.get<{ connection: Connection }>(`/connections/${seg(connectionId)}`),
        api.get<{ runs: Run[] }>(`/connections/${seg(connectionId)}/runs?$top=25`),
      ]);
      const [{ iModel }, { connections }] = await Promise.all([
        api.get<{ iModel: IModel }>(`/imodels/${seg(connection.iModelId)}`),
        api.get<{ connections: Connection[] }>(`/connections?iModelId=${seg(connection.iModelId)}&$top=1000`),
      ]);
      return { connection, runs, iModel, siblings: connections.filter((c) => c.id !== connection.id) };
    },
    (d) => (d && (d.connection.status === "Deleting" || d.runs.some((r) => r.state !== "Completed")) ? 700 : 4_000),
    [api, connectionId],
  );

  const data = page.data;
  if (isNotFound(page.error)) return <NotSharedPage kind="connection" id={connectionId} />;
  if (!data)
    return (
      <>
        <PageHeading title="Connection" />
        <ErrorAlert error={page.error} what="The connection could not be read" />
      </>
    );
  const { connection: c, runs, iModel, siblings } = data;
  const active = c.status === "Active";
  const mayChange = user.role === "admin" || c.owner?.id === user.id;
  const close = () => setDialog(undefined);
  const done = () => {
    setDialog(undefined);
    void page.reload();
  };

  async function synchronize() {
    setRunError(undefined);
    setRunNotice(undefined);
    try {
      const { status } = await api.send("POST", `/connections/${seg(c.id)}/run`);
      setRunNotice(status === 202 ? "Run queued." : "This connection already had an active run: it is shown below.");
      window.setTimeout(() => setRunNotice(undefined), 6_000);
      await page.reload();
    } catch (err) {
      setRunError(err);
    }
  }

  const composites = c.sourceFiles;
  return (
    <>
      <Breadcrumbs className="portal-breadcrumbs">
        <Breadcrumbs.Item href={href("imodels")}>iModels</Breadcrumbs.Item>
        <Breadcrumbs.Item href={href("imodels", c.iModelId)}>{iModel.name}</Breadcrumbs.Item>
        <Breadcrumbs.Item aria-current="page">{c.displayName}</Breadcrumbs.Item>
      </Breadcrumbs>
      <PageHeading title={c.displayName}>
        <StatusBadge status={c.status} />
      </PageHeading>
      <div className="portal-actions" role="group" aria-label="Connection actions">
        <Button styleType="high-visibility" disabled={!active} onClick={() => void synchronize()}>
          Synchronize
        </Button>
        <Button disabled={!active} onClick={() => setDialog("sync")}>
          Synchronize chosen files
        </Button>
        <Button disabled={!active} onClick={() => setDialog("rename")}>
          Rename
        </Button>
        <Button disabled={!active} onClick={() => setDialog("schedule")}>
          Schedule
        </Button>
        <Button disabled={!active} onClick={() => setDialog("owner")}>
          Owner
        </Button>
        <Button disabled={!active} onClick={() => setDialog("delete")}>
          Delete
        </Button>
      </div>
      {!active ? (
        <Text as="p" className="portal-notice" role="status">
          {c.status === "Deleting"
            ? "This connection is being deleted with its data: its delete job is shown below. It never synchronizes again."
            : `This connection was deleted${c.deletion ? ` (${c.deletion.mode === "keepData" ? "its data was kept" : "with its data"}, ${formatDateTime(c.deletion.requestedDateTime)})` : ""}. It never synchronizes again.`}
        </Text>
      ) : !mayChange ? (
        <Hint>
          Only the owner ({c.owner?.name ?? "none"}) or an administrator may rename, schedule, change the mapping or the
          deletion guard of, or delete this connection. Any member of the iModel&apos;s team may synchronize it, and a
          member who has used the iModel may take it over (Owner).
        </Hint>
      ) : null}
      <ErrorAlert error={runError} what="Synchronize" />
      {runNotice ? (
        <Text as="p" role="status" className="portal-notice">
          {runNotice}
        </Text>
      ) : null}

      <dl className="portal-facts portal-connection-facts">
        <dt>Source folder</dt>
        <dd>
          <code>{c.source.path}</code>
        </dd>
        <dt>Owner</dt>
        <dd>
          {c.owner ? `${c.owner.name} (${c.owner.email})` : "none"}
          <Hint>{tokenText(c.owner)}</Hint>
        </dd>
        <dt>Schedule</dt>
        <dd>
          {describeSchedule(c.schedule)}
          {c.schedule.nextRunDateTime ? (
            <Hint>Next run {formatDateTime(c.schedule.nextRunDateTime)}</Hint>
          ) : c.schedule.type !== "manual" && c.schedule.paused ? (
            <Hint>Paused{c.schedule.note ? `: ${c.schedule.note}` : ""}</Hint>
          ) : null}
          {c.schedule.lastRun ? (
            <Hint>
              Last scheduled run {formatDateTime(c.schedule.lastRun.scheduledDateTime)}: {c.schedule.lastRun.outcome}
              {c.schedule.lastRun.error
                ? ` (${c.schedule.lastRun.error.code}: ${c.schedule.lastRun.error.message})`
                : ""}
            </Hint>
          ) : null}
        </dd>
        <dt>Geographic coordinate system</dt>
        <dd>
          {c.definesGcs
            ? `defined by this connection (${iModel.gcsDefinedBy?.path ?? "one of its files"})`
            : iModel.gcsDefinedBy
              ? "defined by another connection"
              : "not set yet"}
        </dd>
        <dt>Deletion guard</dt>
        <dd data-testid="deletion-guard">
          {describeGuard(c.deletionGuard)}
          {active && mayChange ? (
            <>
              {" "}
              <Button size="small" onClick={() => setDialog("guard")} aria-label="Change the deletion guard">
                Change
              </Button>
            </>
          ) : null}
        </dd>
        <dt>iModel</dt>
        <dd>
          <Anchor href={href("imodels", c.iModelId)}>{iModel.name}</Anchor>
        </dd>
      </dl>
      <HeldFiles
        connection={c}
        run={runs[0]}
        onConfirmed={(notice) => {
          setRunNotice(notice);
          window.setTimeout(() => setRunNotice(undefined), 8_000);
          void page.reload();
        }}
      />

      <section aria-labelledby="mapping-heading" className="portal-section">
        <div className="portal-section-head">
          <h2 id="mapping-heading" className="portal-h2">
            Mapping
          </h2>
          {active ? (
            <Button size="small" onClick={() => setDialog("add")}>
              Add composite models
            </Button>
          ) : null}
        </div>
        <ul className="portal-mapping">
          {composites.map((f) => (
            <li key={f.id} data-testid="composite" data-path={f.path}>
              <div className="portal-mapping-row">
                <span className="portal-path">{f.path}</span>
                <Text variant="small" isMuted as="span">
                  composite model, {f.connectorType}
                  {iModel.gcsDefinedBy?.sourceFileId === f.id ? ", defines the GCS" : ""}
                </Text>
                {active && composites.length > 1 ? (
                  <Button size="small" onClick={() => setDialog({ unmap: f })} aria-label={`Unmap ${f.path}`}>
                    Unmap
                  </Button>
                ) : null}
              </div>
              {active && composites.length === 1 ? (
                <Hint>
                  The last composite model cannot be unmapped: removing every file means deleting the connection (use
                  Delete).
                </Hint>
              ) : null}
              {f.references.length ? (
                <>
                  <References refs={f.references} of={f.path} />
                  <Hint>
                    Reference files go with their composite model: they cannot be unmapped on their own. Unmap or change{" "}
                    {f.path} instead.
                  </Hint>
                </>
              ) : null}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="runs-heading" className="portal-section">
        <h2 id="runs-heading" className="portal-h2">
          Runs
        </h2>
        <RunList runs={runs} files={c.sourceFiles} active={active} onChanged={() => void page.reload()} />
      </section>

      <Timeline connectionId={c.id} />

      {dialog === "sync" ? (
        <SyncDialog
          connection={c}
          onClose={close}
          onStarted={(created) => {
            done();
            setRunNotice(created ? "Run queued." : "This connection already had an active run: it is shown below.");
            window.setTimeout(() => setRunNotice(undefined), 6_000);
          }}
        />
      ) : null}
      {dialog === "rename" ? <RenameDialog connection={c} onClose={close} onDone={done} /> : null}
      {dialog === "schedule" ? <ScheduleDialog connection={c} onClose={close} onDone={done} /> : null}
      {dialog === "owner" ? <OwnerDialog connection={c} onClose={close} onDone={done} /> : null}
      {dialog === "delete" ? (
        <DeleteDialog
          connection={c}
          onClose={close}
          onDone={done}
          otherConnections={siblings.filter((s) => s.status !== "Deleted").length}
        />
      ) : null}
      {dialog === "add" ? <AddFilesDialog connection={c} onClose={close} onDone={done} /> : null}
      {dialog === "guard" ? <DeletionGuardDialog connection={c} onClose={close} onDone={done} /> : null}
      {typeof dialog === "object" ? (
        <UnmapDialog connection={c} file={dialog.unmap} onClose={close} onDone={done} />
      ) : null}
    </>
  );
}

/** Reference files under the file that names them, each with its own references, to any depth. */
function References({ refs, of }: { refs: ReferenceFile[]; of: string }) {
  return (
    <ul className="portal-references" aria-label={`Reference files of ${of}`}>
      {refs.map((r) => (
        <li key={`${r.id} ${r.referencedAs}`} data-testid="reference" data-path={r.path}>
          <span className="portal-path">{r.resolved ? r.path : r.referencedAs}</span>{" "}
          <Text variant="small" isMuted as="span">
            reference file of {of} ({r.attachment === "Overlay" ? "overlay" : "attached"}
            {r.resolved ? "" : ", not found"})
          </Text>
          {r.circular ? (
            <Text variant="small" as="span" className="portal-circular" data-testid="circular">
              {" "}
              circular reference: {r.path} is already on the way from the composite model, so it is not followed again
            </Text>
          ) : null}
          {r.references?.length ? <References refs={r.references} of={r.path} /> : null}
        </li>
      ))}
    </ul>
  );
}
