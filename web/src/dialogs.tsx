/**
 * The dialogs of a connection's page: rename, schedule, owner, delete (two modes), unmap a composite model (two
 * modes; with its data, what would be removed is shown before the user confirms), add composite models. Each sends one request and shows a refusal as the API words it.
 */
import {
  Button,
  LabeledInput,
  LabeledSelect,
  Modal,
  ModalButtonBar,
  ModalContent,
  Radio,
  Text,
} from "@itwin/itwinui-react";
import { useState, type FormEvent, type ReactNode } from "react";
import { ApiRequestError, seg } from "./api";
import { ErrorAlert, fieldMessage, Hint, isFieldError } from "./components";
import { useSession } from "./context";
import { FolderBrowser } from "./FolderBrowser";
import { flattenReferences, formatDateTime, plural } from "./format";
import { usePolled } from "./hooks";
import { RemovalPreviewView } from "./RemovalPreview";
import { editableSchedule, scheduleBody, ScheduleFields } from "./ScheduleFields";
import type { Connection, Member, Owner, ScheduleInput, SourceFile, SourceFileEntry } from "./types";

/** A dialog whose body is a form: submit runs `onSubmit`, errors are kept for the body to show. */
function FormDialog({
  title,
  submitLabel,
  onClose,
  onSubmit,
  children,
  danger,
  wide,
  hideSubmit,
}: {
  title: string;
  submitLabel: string;
  onClose: () => void;
  onSubmit: () => Promise<void>;
  children: (error: unknown) => ReactNode;
  danger?: boolean;
  wide?: boolean;
  hideSubmit?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onSubmit();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose} className={wide ? "portal-wide-modal" : undefined}>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <ModalContent>{children(error)}</ModalContent>
        <ModalButtonBar>
          {hideSubmit ? null : (
            <Button type="submit" styleType={danger ? "high-visibility" : "high-visibility"} disabled={busy}>
              {submitLabel}
            </Button>
          )}
          <Button type="button" onClick={onClose}>
            {hideSubmit ? "Close" : "Cancel"}
          </Button>
        </ModalButtonBar>
      </form>
    </Modal>
  );
}

export function RenameDialog({ connection, onClose, onDone }: DialogProps) {
  const { api } = useSession();
  const [name, setName] = useState(connection.displayName);
  return (
    <FormDialog
      title="Rename connection"
      submitLabel="Rename"
      onClose={onClose}
      onSubmit={async () => {
        await api.send("PATCH", `/connections/${seg(connection.id)}`, { displayName: name });
        onDone();
      }}
    >
      {(error) => (
        <>
          <LabeledInput
            label="Display name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            required
            status={fieldMessage(error, "displayName") ? "negative" : undefined}
            message={
              fieldMessage(error, "displayName") ??
              "Only the display name changes; the data in the iModel takes it at the next run."
            }
          />
          {isFieldError(error, ["displayName"]) ? null : <ErrorAlert error={error} />}
        </>
      )}
    </FormDialog>
  );
}

export function ScheduleDialog({ connection, onClose, onDone }: DialogProps) {
  const { api } = useSession();
  const [schedule, setSchedule] = useState<ScheduleInput>(editableSchedule(connection.schedule));
  return (
    <FormDialog
      title="Schedule"
      submitLabel="Save schedule"
      onClose={onClose}
      onSubmit={async () => {
        await api.send("PUT", `/connections/${seg(connection.id)}/schedule`, scheduleBody(schedule));
        onDone();
      }}
    >
      {(error) => (
        <>
          <Hint>
            Scheduled syncs run on behalf of the connection&apos;s owner, with the owner&apos;s token. Daily and weekly
            times are wall-clock times in the chosen time zone, also across daylight-saving changes.
          </Hint>
          <ScheduleFields
            value={schedule}
            onChange={setSchedule}
            error={error instanceof ApiRequestError && error.code === "InvalidSchedule" ? error.message : undefined}
          />
          {error instanceof ApiRequestError && error.code === "InvalidSchedule" ? null : <ErrorAlert error={error} />}
        </>
      )}
    </FormDialog>
  );
}

/** The owner's token in words. */
export function tokenText(owner: Owner | null): string {
  if (!owner) return "no owner";
  if (owner.tokenStatus === "None") return "no token yet (issued at the owner's first visit)";
  const when = formatDateTime(owner.tokenExpiresDateTime);
  return owner.tokenStatus === "Expired"
    ? `token expired on ${when}: scheduled syncs fail until ${owner.name} visits`
    : `token valid until ${when}`;
}

/**
 * Who may become the owner (docs/product-rules.md "Teams"): members of the iModel's team who have interacted with it
 * since being added, other than the current owner. The owner or an administrator gives it to any of them; another
 * member may only take it (themselves).
 */
export function ownerCandidates(
  members: Member[],
  connection: Pick<Connection, "owner">,
  user: { id: string; role: string },
): { offered: Member[]; notYet: Member[]; mayGive: boolean } {
  const mayGive = user.role === "admin" || connection.owner?.id === user.id;
  const others = members.filter((m) => m.userId !== connection.owner?.id && (mayGive || m.userId === user.id));
  return {
    offered: others.filter((m) => m.firstInteractionDateTime !== null),
    notYet: others.filter((m) => m.firstInteractionDateTime === null),
    mayGive,
  };
}

export function OwnerDialog({ connection, onClose, onDone }: DialogProps) {
  const { api, user } = useSession();
  const members = usePolled(
    () =>
      api.get<{ members: Member[] }>(`/imodels/${seg(connection.iModelId)}/members?$top=1000`).then((b) => b.members),
    () => 0,
    [api, connection.iModelId],
  );
  const { offered, notYet, mayGive } = ownerCandidates(members.data ?? [], connection, user);
  const inTeam = (members.data ?? []).some((m) => m.userId === user.id);
  const [userId, setUserId] = useState<string>();
  const [changed, setChanged] = useState<{ to: Member; connection: Connection; notice?: { status: string } }>();
  const chosen = userId ?? offered[0]?.userId;

  async function runNow() {
    await api.send("POST", `/connections/${seg(connection.id)}/run`);
    onDone();
  }

  return (
    <FormDialog
      title="Owner"
      submitLabel={mayGive ? "Change owner" : "Take ownership"}
      onClose={changed ? onDone : onClose}
      hideSubmit={!!changed || offered.length === 0}
      onSubmit={async () => {
        const to = offered.find((m) => m.userId === chosen);
        if (!to) return;
        const { body } = await api.send<{ connection: Connection; notice?: { status: string } }>(
          "POST",
          `/connections/${seg(connection.id)}/owner`,
          { userId: to.userId },
        );
        setChanged({ to, connection: body.connection, notice: body.notice });
      }}
    >
      {(error) =>
        changed ? (
          <div role="status" className="portal-owner-changed">
            <Text as="p">
              <strong>{changed.to.name}</strong> now owns this connection; scheduled syncs run on their behalf.
              {changed.notice?.status === "queued" ? " An email tells them (or the previous owner) about it." : ""}
            </Text>
            {changed.to.userId === user.id ? (
              <>
                <Text as="p">Run a manual sync now, so that the next synchronizations use your fresh owner token.</Text>
                <Button styleType="high-visibility" onClick={() => void runNow()}>
                  Synchronize now
                </Button>
              </>
            ) : (
              <Text as="p">
                {changed.to.name} should run a manual sync now (Synchronize on this connection&apos;s page, signed in as{" "}
                {changed.to.name}), so that the next synchronizations use their fresh owner token.
              </Text>
            )}
          </div>
        ) : (
          <>
            <Text as="p">
              Current owner:{" "}
              <strong>{connection.owner ? `${connection.owner.name} (${connection.owner.email})` : "none"}</strong>,{" "}
              {tokenText(connection.owner)}.
            </Text>
            <Hint>
              Ownership moves only between members of the iModel&apos;s team who have used the iModel since they were
              added. The owner or an administrator gives it; another member may take it for themselves. It cannot change
              while a run of the connection is queued or executing.
            </Hint>
            <ErrorAlert error={members.error} what="The team members could not be read" />
            {members.data && !mayGive && !inTeam ? (
              <Text as="p">You are not in this iModel&apos;s team, so you cannot take this connection.</Text>
            ) : null}
            {members.data && offered.length === 0 && (mayGive || inTeam) ? (
              <Text as="p">
                {mayGive
                  ? "No other member of the team can own it yet."
                  : "You cannot take it yet: you have not used this iModel since you were added."}
              </Text>
            ) : null}
            {offered.length > 0 ? (
              <LabeledSelect<string>
                label="New owner"
                native
                value={chosen}
                options={offered.map((m) => ({
                  value: m.userId,
                  label: `${m.name} (${m.email})${m.userId === user.id ? ", you" : ""}`,
                }))}
                onChange={(v: string) => setUserId(v)}
              />
            ) : null}
            {notYet.length > 0 ? (
              <div data-testid="owner-not-offered">
                <Text as="p" variant="small">
                  Not offered, because they have not used this iModel since they were added:{" "}
                  {notYet.map((m) => `${m.name} (${m.email})`).join(", ")}. They can own it once they have opened the
                  iModel or one of its connections.
                </Text>
              </div>
            ) : null}
            {mayGive ? (
              <Hint>Someone else? A manager of the team adds them first (Team, on the iModel&apos;s page).</Hint>
            ) : null}
            <ErrorAlert error={error} what="The owner was not changed" />
          </>
        )
      }
    </FormDialog>
  );
}

const MODE_TEXT = {
  keepData: "Stops future syncs. The data already synchronized stays in the iModel.",
  deleteData:
    "Stops future syncs and removes the data from the iModel with a delete job (you can follow its progress).",
};

function ModeChoice({
  mode,
  onChange,
  keepText,
  deleteText,
}: {
  mode: "keepData" | "deleteData";
  onChange: (m: "keepData" | "deleteData") => void;
  keepText: string;
  deleteText: string;
}) {
  return (
    <fieldset className="portal-fieldset">
      <legend className="portal-legend">What happens to the data in the iModel</legend>
      <Radio
        name="mode"
        value="keepData"
        label="Keep data"
        checked={mode === "keepData"}
        onChange={() => onChange("keepData")}
        aria-describedby="mode-keep-text"
      />
      <Hint id="mode-keep-text">{keepText}</Hint>
      <Radio
        name="mode"
        value="deleteData"
        label="Delete data"
        checked={mode === "deleteData"}
        onChange={() => onChange("deleteData")}
        aria-describedby="mode-delete-text"
      />
      <Hint id="mode-delete-text">{deleteText}</Hint>
    </fieldset>
  );
}

export function DeleteDialog({
  connection,
  onClose,
  onDone,
  otherConnections,
}: DialogProps & { otherConnections: number }) {
  const { api } = useSession();
  const [mode, setMode] = useState<"keepData" | "deleteData">("keepData");
  return (
    <FormDialog
      title={`Delete ${connection.displayName}`}
      submitLabel="Delete connection"
      danger
      wide
      onClose={onClose}
      onSubmit={async () => {
        await api.send("DELETE", `/connections/${seg(connection.id)}?mode=${mode}`);
        onDone();
      }}
    >
      {(error) => (
        <>
          <ModeChoice
            mode={mode}
            onChange={setMode}
            keepText={`${MODE_TEXT.keepData} The schedule is removed and an active run is cancelled; the files may then be mapped by another connection. This is final: the data can no longer be removed through this connection.`}
            deleteText={`${MODE_TEXT.deleteData} It removes every element, model and provenance record this connection's files brought in; the connection shows "Deleting" until the job ends.`}
          />
          {mode === "deleteData" ? <RemovalPreviewView path={`/connections/${seg(connection.id)}`} /> : null}
          {connection.definesGcs ? (
            <Text as="p" className="portal-warning-text" data-testid="gcs-note">
              This connection defines the iModel&apos;s geographic coordinate system (GCS): the location of every other
              connection&apos;s data depends on it. While the iModel has other connections
              {otherConnections > 0 ? ` (it has ${plural(otherConnections, "other")})` : ""}, it cannot be deleted;
              delete the others first.
            </Text>
          ) : null}
          <ErrorAlert error={error} what="The connection was not deleted" />
        </>
      )}
    </FormDialog>
  );
}

export function UnmapDialog({ connection, file, onClose, onDone }: DialogProps & { file: SourceFile }) {
  const { api } = useSession();
  const [mode, setMode] = useState<"keepData" | "deleteData">("keepData");
  const namedElsewhere = new Set(
    connection.sourceFiles
      .filter((f) => f.id !== file.id)
      .flatMap((f) => flattenReferences(f.references).map((r) => r.path)),
  );
  const going = flattenReferences(file.references).filter(
    (r) => r.resolved && !namedElsewhere.has(r.path) && r.path !== file.path,
  );
  return (
    <FormDialog
      title={`Unmap ${file.path}`}
      submitLabel="Unmap"
      danger
      wide
      onClose={onClose}
      onSubmit={async () => {
        await api.send("DELETE", `/connections/${seg(connection.id)}/sourceFiles/${seg(file.id)}?mode=${mode}`);
        onDone();
      }}
    >
      {(error) => (
        <>
          <Text as="p">
            {going.length
              ? `The composite model goes with the reference files only it names: ${going.map((r) => r.path).join(", ")}.`
              : "The composite model is unmapped alone (it names no reference file of its own)."}
          </Text>
          <ModeChoice mode={mode} onChange={setMode} keepText={MODE_TEXT.keepData} deleteText={MODE_TEXT.deleteData} />
          {mode === "deleteData" ? (
            <RemovalPreviewView path={`/connections/${seg(connection.id)}/sourceFiles/${seg(file.id)}`} />
          ) : null}
          <ErrorAlert error={error} what="The file was not unmapped" />
        </>
      )}
    </FormDialog>
  );
}

export function AddFilesDialog({ connection, onClose, onDone }: DialogProps) {
  const { api } = useSession();
  const source = connection.source.path.replace(/\/+$/, "");
  const [folder, setFolder] = useState<string | null>(source);
  const [picked, setPicked] = useState<SourceFileEntry[]>([]);
  const [lastError, setLastError] = useState<unknown>();
  const relative = (abs: string) => abs.slice(source.length + 1);
  const mapped = new Map<string, string>();
  // A reference file of this connection may become a composite model (it keeps its id): only composites are taken.
  for (const f of connection.sourceFiles)
    mapped.set(`${source}/${f.path}`, "already a composite model of this connection");
  const fileErrors = new Map<string, string>();
  picked.forEach((f, i) => {
    const m = fieldMessage(lastError, `sourceFiles.${i}.path`);
    if (m) fileErrors.set(f.path, String(m));
  });
  return (
    <FormDialog
      title="Add composite models"
      submitLabel={picked.length ? `Add ${plural(picked.length, "composite model")}` : "Add"}
      wide
      onClose={onClose}
      onSubmit={async () => {
        setLastError(undefined);
        if (picked.length === 0) throw new Error("Tick at least one file.");
        try {
          await api.send("POST", `/connections/${seg(connection.id)}/sourceFiles`, {
            sourceFiles: picked.map((f) => ({ path: relative(f.path), connectorType: f.connectorType })),
          });
        } catch (err) {
          setLastError(err);
          throw err;
        }
        onDone();
      }}
    >
      {(error) => (
        <>
          <Hint>
            Files of the connection&apos;s source folder {source} and its subfolders. Their references are found at the
            next run.
          </Hint>
          <FolderBrowser
            api={api}
            path={folder}
            onPathChange={setFolder}
            floor={source}
            selected={new Set(picked.map((f) => f.path))}
            onToggle={(f, on) => setPicked((p) => (on ? [...p, f] : p.filter((x) => x.path !== f.path)))}
            unavailable={mapped}
            fileErrors={fileErrors}
            label="Files to add"
          />
          {fileErrors.size ? null : <ErrorAlert error={error} what="Nothing was added" />}
        </>
      )}
    </FormDialog>
  );
}

export interface DialogProps {
  connection: Connection;
  onClose: () => void;
  /** After the change: close and read the connection again. */
  onDone: () => void;
}
