/**
 * An iModel's connections: display name, status, owner, schedule and next run, last run result and time, number of
 * files. Select several and synchronize them at once (`POST /imodels/{id}/run`; the iModel's queue runs them one after
 * the other). The list updates by itself while runs are active. Team leads to the iModel's team; an iModel that is
 * not found or not shared with the user gets a page that says so.
 */
import { Anchor, Breadcrumbs, Button, Checkbox, Text, ToggleSwitch } from "@itwin/itwinui-react";
import { useState } from "react";
import { seg } from "../api";
import { stateText } from "../codes";
import { ErrorAlert, Hint, PageHeading, ResultBadge, StatusBadge } from "../components";
import { useSession } from "../context";
import { describeSchedule, flattenReferences, formatDateTime, plural } from "../format";
import { href, navigate, usePolled } from "../hooks";
import type { Connection, IModel, Run } from "../types";
import { isNotFound, NotSharedPage } from "./NotFoundPage";

interface Row {
  connection: Connection;
  lastRun?: Run;
}

/** Composite models and the reference files found under them, nested ones too (each file once). */
export function fileCount(c: Connection): number {
  const ids = new Set(c.sourceFiles.map((f) => f.id));
  for (const f of c.sourceFiles) for (const r of flattenReferences(f.references)) if (r.resolved) ids.add(r.id);
  return ids.size;
}

export function IModelPage({ iModelId }: { iModelId: string }) {
  const { api } = useSession();
  const [showDeleted, setShowDeleted] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [runMessage, setRunMessage] = useState<string>();
  const [runError, setRunError] = useState<unknown>();
  const [busy, setBusy] = useState(false);

  const iModel = usePolled(
    () => api.get<{ iModel: IModel }>(`/imodels/${seg(iModelId)}`).then((b) => b.iModel),
    () => 30_000,
    [api, iModelId],
  );
  const rows = usePolled(
    async (): Promise<Row[]> => {
      const status = showDeleted ? "&status=Deleted" : "";
      const { connections } = await api.get<{ connections: Connection[] }>(
        `/connections?iModelId=${seg(iModelId)}&$top=1000${status}`,
      );
      return Promise.all(
        connections.map(async (connection) => {
          const last = connection._links.lastRun?.href;
          const lastRun = last
            ? await api.get<{ run: Run }>(last).then(
                (b) => b.run,
                () => undefined,
              )
            : undefined;
          return { connection, lastRun };
        }),
      );
    },
    (data) => (data?.some((r) => r.lastRun && r.lastRun.state !== "Completed") ? 1_500 : 5_000),
    [api, iModelId, showDeleted],
  );

  const active = (rows.data ?? []).filter((r) => r.connection.status === "Active");
  const allSelected = active.length > 0 && active.every((r) => selected.has(r.connection.id));
  const toggle = (id: string, on: boolean) =>
    setSelected((s) => {
      const next = new Set(s);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  async function synchronize() {
    setBusy(true);
    setRunError(undefined);
    setRunMessage(undefined);
    try {
      const ids = [...selected].filter((id) => active.some((r) => r.connection.id === id));
      const { body } = await api.send<{ runs: { connectionId: string; created: boolean }[] }>(
        "POST",
        `/imodels/${seg(iModelId)}/run`,
        { connectionIds: ids },
      );
      const created = body.runs.filter((r) => r.created).length;
      const already = body.runs.length - created;
      setRunMessage(
        `${plural(created, "run")} queued${already ? `; ${plural(already, "connection")} already had an active run` : ""}. The iModel's queue runs them one after the other.`,
      );
      setSelected(new Set());
      await rows.reload();
    } catch (err) {
      setRunError(err);
    } finally {
      setBusy(false);
    }
  }

  if (isNotFound(iModel.error) || isNotFound(rows.error)) return <NotSharedPage kind="iModel" id={iModelId} />;
  const name = iModel.data?.name ?? "iModel";
  return (
    <>
      <Breadcrumbs className="portal-breadcrumbs">
        <Breadcrumbs.Item href={href("imodels")}>iModels</Breadcrumbs.Item>
        <Breadcrumbs.Item aria-current="page">{name}</Breadcrumbs.Item>
      </Breadcrumbs>
      <PageHeading title={name}>
        <div className="portal-actions">
          <Button styleType="high-visibility" disabled={busy || selected.size === 0} onClick={() => void synchronize()}>
            {selected.size > 0 ? `Synchronize ${plural(selected.size, "connection")}` : "Synchronize"}
          </Button>
          <Button onClick={() => navigate("imodels", iModelId, "new-connection")}>New connection</Button>
          <Button onClick={() => navigate("imodels", iModelId, "team")}>Team</Button>
        </div>
      </PageHeading>
      <ErrorAlert error={iModel.error} />
      {iModel.data ? (
        <Hint>
          {iModel.data.location.path}
          {iModel.data.gcsDefinedBy ? ` · geographic coordinate system set by ${iModel.data.gcsDefinedBy.path}` : ""}
        </Hint>
      ) : null}
      <ErrorAlert error={runError} what="Synchronize" />
      {runMessage ? (
        <Text as="p" role="status" className="portal-notice">
          {runMessage}
        </Text>
      ) : null}
      <h2 className="portal-h2">Connections</h2>
      <ToggleSwitch
        label="Show deleted connections"
        checked={showDeleted}
        onChange={(e) => {
          setShowDeleted(e.target.checked);
          setSelected(new Set());
        }}
      />
      <ErrorAlert error={rows.error} what="The connections could not be read" />
      {rows.data?.length === 0 ? (
        <Text as="p">{showDeleted ? "No deleted connection." : "No connection yet: add one with New connection."}</Text>
      ) : null}
      {rows.data && rows.data.length > 0 ? (
        <div className="portal-table-wrap">
          <table className="portal-table" aria-label="Connections">
            <thead>
              <tr>
                <th scope="col" className="portal-col-select">
                  <Checkbox
                    aria-label="Select every active connection"
                    checked={allSelected}
                    disabled={active.length === 0}
                    indeterminate={!allSelected && active.some((r) => selected.has(r.connection.id))}
                    onChange={(e) =>
                      setSelected(e.target.checked ? new Set(active.map((r) => r.connection.id)) : new Set())
                    }
                  />
                </th>
                <th scope="col">Connection</th>
                <th scope="col">Status</th>
                <th scope="col">Owner</th>
                <th scope="col">Schedule</th>
                <th scope="col">Last run</th>
                <th scope="col">Files</th>
              </tr>
            </thead>
            <tbody>
              {rows.data.map(({ connection: c, lastRun }) => (
                <tr key={c.id}>
                  <td className="portal-col-select">
                    <Checkbox
                      aria-label={`Select ${c.displayName}`}
                      checked={selected.has(c.id)}
                      disabled={c.status !== "Active"}
                      onChange={(e) => toggle(c.id, e.target.checked)}
                    />
                  </td>
                  <td>
                    <Anchor href={href("connections", c.id)}>{c.displayName}</Anchor>
                  </td>
                  <td>
                    <StatusBadge status={c.status} />
                  </td>
                  <td>
                    {c.owner ? (
                      <>
                        {c.owner.name}
                        {c.owner.tokenStatus === "Expired" ? (
                          <span className="portal-warning-text"> (token expired)</span>
                        ) : null}
                      </>
                    ) : (
                      "none"
                    )}
                  </td>
                  <td>
                    {describeSchedule(c.schedule)}
                    {c.schedule.nextRunDateTime ? (
                      <Hint>next run {formatDateTime(c.schedule.nextRunDateTime)}</Hint>
                    ) : null}
                  </td>
                  <td>
                    {lastRun ? (
                      <>
                        {lastRun.state === "Completed" ? (
                          <ResultBadge result={lastRun.result} />
                        ) : (
                          <ResultBadge result="Undetermined" label={stateText(lastRun.state)} />
                        )}
                        <Hint>
                          {lastRun.kind === "delete" ? "delete job, " : ""}
                          {formatDateTime(lastRun.endDateTime ?? lastRun.startDateTime ?? lastRun.queuedDateTime)}
                        </Hint>
                      </>
                    ) : (
                      "never run"
                    )}
                  </td>
                  <td>{fileCount(c)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
