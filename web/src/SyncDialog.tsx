/**
 * Synchronize chosen files (README.md "Run control", Chosen files and forced runs, and Dry runs): some of the
 * connection's composite models (with their reference files) or all, optionally forced (files read even when their
 * content hash is unchanged); "What would change?" asks the API's dry run of that same run (which files changed by
 * content hash, which would be read, and an estimate of the duration from past runs) without starting it.
 */
import { Button, Checkbox, Modal, ModalButtonBar, ModalContent, ProgressRadial, Text } from "@itwin/itwinui-react";
import { useState } from "react";
import { seg } from "./api";
import { ErrorAlert, Hint } from "./components";
import { useSession } from "./context";
import { formatDuration, formatSize, plural } from "./format";
import type { Connection, RunPreview } from "./types";

/** The body of `POST /connections/{id}/run` for these choices: `sourceFileIds` only when not every file is chosen. */
export function runBody(
  connection: Pick<Connection, "sourceFiles">,
  chosen: ReadonlySet<string>,
  force: boolean,
): { sourceFileIds?: string[]; force?: true } {
  const all = connection.sourceFiles.every((f) => chosen.has(f.id));
  return {
    ...(all ? {} : { sourceFileIds: connection.sourceFiles.filter((f) => chosen.has(f.id)).map((f) => f.id) }),
    ...(force ? { force: true as const } : {}),
  };
}

export function SyncDialog({
  connection,
  onClose,
  onStarted,
}: {
  connection: Connection;
  onClose: () => void;
  /** After a run was asked: `created` false when the connection's active run was answered instead. */
  onStarted: (created: boolean) => void;
}) {
  const { api } = useSession();
  const [chosen, setChosen] = useState<Set<string>>(() => new Set(connection.sourceFiles.map((f) => f.id)));
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState<"preview" | "run">();
  const [error, setError] = useState<unknown>();
  const [preview, setPreview] = useState<RunPreview>();
  const body = runBody(connection, chosen, force);
  const title = "Synchronize chosen files";

  async function call(dryRun: boolean) {
    setBusy(dryRun ? "preview" : "run");
    setError(undefined);
    try {
      const path = `/connections/${seg(connection.id)}/run`;
      if (dryRun) {
        setPreview(undefined);
        setPreview((await api.send<{ preview: RunPreview }>("POST", path, { ...body, dryRun: true })).body.preview);
      } else {
        const { status } = await api.send("POST", path, body);
        onStarted(status === 202);
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
    }
  }

  const toggle = (id: string, on: boolean) => {
    setPreview(undefined);
    setChosen((c) => {
      const next = new Set(c);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  };

  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose} className="portal-wide-modal">
      <ModalContent className="portal-dialog-fields">
        <fieldset className="portal-fieldset">
          <legend className="portal-legend">Composite models to synchronize (with their reference files)</legend>
          {connection.sourceFiles.map((f) => (
            <Checkbox
              key={f.id}
              label={f.path}
              checked={chosen.has(f.id)}
              onChange={(e) => toggle(f.id, e.target.checked)}
            />
          ))}
        </fieldset>
        <Checkbox
          label="Force: read the files even when their content has not changed"
          checked={force}
          onChange={(e) => {
            setPreview(undefined);
            setForce(e.target.checked);
          }}
        />
        <Hint>
          A forced run compares every element again: elements that did not change stay as they are and are counted
          unchanged.
        </Hint>
        {busy === "preview" ? (
          <div className="portal-preview-loading" role="status">
            <ProgressRadial indeterminate size="small" aria-hidden="true" />
            <Text as="span">Reading the files…</Text>
          </div>
        ) : null}
        {preview ? <RunPreviewView preview={preview} /> : null}
        <ErrorAlert error={error} what={busy === "run" ? "No run was started" : "Not done"} />
      </ModalContent>
      <ModalButtonBar>
        <Button styleType="high-visibility" disabled={!!busy || chosen.size === 0} onClick={() => void call(false)}>
          Synchronize {chosen.size === connection.sourceFiles.length ? "all" : plural(chosen.size, "file")}
        </Button>
        <Button disabled={!!busy || chosen.size === 0} onClick={() => void call(true)}>
          What would change?
        </Button>
        <Button onClick={onClose}>Cancel</Button>
      </ModalButtonBar>
    </Modal>
  );
}

function RunPreviewView({ preview: p }: { preview: RunPreview }) {
  return (
    <div data-testid="run-preview">
      <Text as="p" role="status">
        {p.counts.toSynchronize === 0
          ? "Nothing would be read: no chosen file changed since its last synchronization."
          : `${plural(p.counts.toSynchronize, "file")} would be read (${p.counts.changed.toLocaleString()} changed, ${p.counts.unchanged.toLocaleString()} unchanged${p.counts.unreadable ? `, ${p.counts.unreadable.toLocaleString()} unreadable` : ""}).`}{" "}
        {p.estimate
          ? `Estimated duration: ${formatDuration(p.estimate.durationMs)}, from the connection's past runs.`
          : "No estimate of the duration: no past run wrote these files."}
      </Text>
      <div className="portal-table-wrap">
        <table className="portal-table" aria-label="What the run would do">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Content</th>
              <th scope="col">The run would</th>
              <th scope="col">Size</th>
            </tr>
          </thead>
          <tbody>
            {p.files.map((f) => (
              <tr key={f.sourceFileId} data-testid="preview-file" data-path={f.path} data-synchronize={f.synchronize}>
                <td>
                  <span className="portal-path">{f.path}</span>
                  {f.role === "ReferenceFile" ? (
                    <Text variant="small" isMuted as="span">
                      {" "}
                      reference file
                    </Text>
                  ) : null}
                </td>
                <td>{f.problem ? "cannot be read" : f.changed ? "changed" : "unchanged"}</td>
                <td>
                  {f.synchronize ? "read it" : "skip it"}
                  {f.problem ? (
                    <Hint>
                      <code>{f.problem.code}</code>: {f.problem.message}
                    </Hint>
                  ) : null}
                </td>
                <td>{f.size === undefined ? "" : formatSize(f.size)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
