/**
 * A new connection (docs/product-rules.md "Connections"): browse the folders the service may read, tick composite
 * models in one folder (the connection's source), name it, optionally set a schedule. Refusals are shown as the API
 * words them, next to the field they are about (a file already mapped by another connection next to that file).
 */
import { Breadcrumbs, Button, LabeledInput, Text } from "@itwin/itwinui-react";
import { useState, type FormEvent } from "react";
import { ApiRequestError, seg } from "../api";
import { ErrorAlert, fieldMessage, Hint, PageHeading } from "../components";
import { useSession } from "../context";
import { FolderBrowser } from "../FolderBrowser";
import { plural } from "../format";
import { href, navigate, usePolled } from "../hooks";
import { editableSchedule, scheduleBody, ScheduleFields } from "../ScheduleFields";
import type { Connection, IModel, SourceFileEntry } from "../types";
import { isNotFound, NotSharedPage } from "./NotFoundPage";

export function NewConnectionPage({ iModelId }: { iModelId: string }) {
  const { api } = useSession();
  const iModel = usePolled(
    () => api.get<{ iModel: IModel }>(`/imodels/${seg(iModelId)}`).then((b) => b.iModel),
    () => 0,
    [api, iModelId],
  );
  const [folder, setFolder] = useState<string | null>(null);
  const [picked, setPicked] = useState<SourceFileEntry[]>([]);
  const [displayName, setDisplayName] = useState("");
  const [schedule, setSchedule] = useState(editableSchedule(undefined));
  const [error, setError] = useState<unknown>();
  const [scheduleError, setScheduleError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const openFolder = (path: string | null) => {
    setFolder(path);
    setPicked([]);
    setError(undefined);
  };

  // The API's details name the field: `sourceFiles.<i>.path` is the i-th picked file.
  const fileErrors = new Map<string, string>();
  if (error instanceof ApiRequestError)
    picked.forEach((f, i) => {
      const m = fieldMessage(error, `sourceFiles.${i}.path`);
      if (m) fileErrors.set(f.path, String(m));
    });
  const folderError = fieldMessage(error, "source.path");
  const nameError = fieldMessage(error, "displayName");
  const shownNextToField = fileErrors.size > 0 || !!folderError || !!nameError;

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(undefined);
    setScheduleError(undefined);
    if (folder === null || picked.length === 0) {
      setError(new Error("Open the source folder and tick at least one composite model."));
      return;
    }
    setBusy(true);
    let created: Connection | undefined;
    try {
      const { body } = await api.send<{ connection: Connection }>("POST", "/connections", {
        iModelId,
        displayName,
        source: { type: "local", path: folder },
        sourceFiles: picked.map((f) => ({ path: f.name, connectorType: f.connectorType })),
      });
      created = body.connection;
      if (schedule.type !== "manual")
        await api.send("PUT", `/connections/${seg(created.id)}/schedule`, scheduleBody(schedule));
      navigate("connections", created.id);
    } catch (err) {
      if (created) {
        // The connection exists; only its schedule was refused: say so, and let the user go on from its page.
        setScheduleError(
          `The connection was created, but its schedule was refused: ${(err as Error).message} Set it on the connection's page.`,
        );
      } else setError(err);
      setBusy(false);
    }
  }

  if (isNotFound(iModel.error)) return <NotSharedPage kind="iModel" id={iModelId} />;
  const name = iModel.data?.name ?? "iModel";
  return (
    <>
      <Breadcrumbs className="portal-breadcrumbs">
        <Breadcrumbs.Item href={href("imodels")}>iModels</Breadcrumbs.Item>
        <Breadcrumbs.Item href={href("imodels", iModelId)}>{name}</Breadcrumbs.Item>
        <Breadcrumbs.Item aria-current="page">New connection</Breadcrumbs.Item>
      </Breadcrumbs>
      <PageHeading title={`New connection in ${name}`} />
      <form onSubmit={(e) => void submit(e)} noValidate className="portal-form">
        <h2 className="portal-h2">Source folder and composite models</h2>
        <Hint>
          The folder you open is the connection&apos;s source. Tick the design files to map as composite models;
          reference files they name (DXF XREFs) are found at each run.
        </Hint>
        <FolderBrowser
          api={api}
          path={folder}
          onPathChange={openFolder}
          selected={new Set(picked.map((f) => f.path))}
          onToggle={(f, on) => setPicked((p) => (on ? [...p, f] : p.filter((x) => x.path !== f.path)))}
          fileErrors={fileErrors}
          folderError={folderError ? String(folderError) : undefined}
          label="Files of the source folder"
        />
        <Text as="p" role="status" className="portal-selection">
          {picked.length ? `${plural(picked.length, "composite model")} picked` : "No composite model picked yet"}
        </Text>
        <h2 className="portal-h2">Name and schedule</h2>
        <LabeledInput
          label="Display name"
          value={displayName}
          required
          onChange={(e) => setDisplayName(e.target.value)}
          status={nameError ? "negative" : undefined}
          message={nameError}
        />
        <ScheduleFields value={schedule} onChange={setSchedule} error={scheduleError} />
        {shownNextToField ? null : <ErrorAlert error={error} />}
        <div className="portal-actions">
          <Button type="submit" styleType="high-visibility" disabled={busy}>
            Create connection
          </Button>
          <Button type="button" onClick={() => navigate("imodels", iModelId)}>
            Cancel
          </Button>
        </div>
      </form>
    </>
  );
}
