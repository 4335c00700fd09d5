/**
 * The deletion guard (README.md "Synchronization"): a run that would delete more than a share of a file's elements
 * (default more than half, and at least 10) holds that file: its task ends `Error` with `DeletionGuard` and nothing of
 * the file is written. Here: the guard's settings in words, their change by the owner or an administrator
 * (`PATCH /connections/{id}` {deletionGuard}), and the files the latest run held, with "Synchronize and apply
 * deletions" (`POST /connections/{id}/run` {"confirmDeletions": true}) after a confirmation.
 */
import {
  Alert,
  Button,
  LabeledInput,
  Modal,
  ModalButtonBar,
  ModalContent,
  Text,
  ToggleSwitch,
} from "@itwin/itwinui-react";
import { useState } from "react";
import { seg } from "./api";
import { heldCounts } from "./codes";
import { ErrorAlert, fieldMessage, Hint, isFieldError } from "./components";
import { useSession } from "./context";
import { plural } from "./format";
import type { Connection, DeletionGuard, Run, Task } from "./types";

/** `0.5` → "50 %", `0.125` → "12.5 %" (as the API's messages write shares). */
export const percent = (share: number) => `${Math.round(share * 1000) / 10} %`;

/** The guard in words: "On: holds a file that would lose more than 50 % of its elements and at least 10 of them." */
export function describeGuard(g: DeletionGuard): string {
  return g.enabled
    ? `On: holds a file that would lose more than ${percent(g.fraction)} of its elements, and at least ${g.minElements.toLocaleString()} of them.`
    : "Off: deletions are applied without being held.";
}

/** The tasks of a completed sync run that the deletion guard held. */
export function heldTasks(run: Run | undefined): Task[] {
  if (!run || run.kind !== "sync" || run.state !== "Completed") return [];
  return run.jobs.flatMap((j) => j.tasks).filter((t) => t.error?.code === "DeletionGuard");
}

/** A held file in words: "proxies.ifc: 15 of its 20 elements in the iModel (75 %) would be deleted". */
export function heldText(t: Task): string {
  const counts = t.error ? heldCounts(t.error.message) : undefined;
  const name = t.fileName ?? t.path;
  return counts
    ? `${name}: ${counts.deleted.toLocaleString()} of its ${counts.existing.toLocaleString()} elements in the iModel (${counts.share}) would be deleted`
    : `${name}: ${t.error?.message ?? "held"}`;
}

export function DeletionGuardDialog({
  connection,
  onClose,
  onDone,
}: {
  connection: Connection;
  onClose: () => void;
  onDone: () => void;
}) {
  const { api } = useSession();
  const g = connection.deletionGuard;
  const [enabled, setEnabled] = useState(g.enabled);
  const [share, setShare] = useState(String(Math.round(g.fraction * 1000) / 10));
  const [minElements, setMinElements] = useState(String(g.minElements));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      // Numbers as typed: the API words any refusal (an empty field is sent as null and refused as not a number).
      const fraction = share.trim() === "" ? null : Number(share) / 100;
      const min = minElements.trim() === "" ? null : Number(minElements);
      await api.send("PATCH", `/connections/${seg(connection.id)}`, {
        deletionGuard: { enabled, fraction, minElements: min },
      });
      onDone();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const shareError = fieldMessage(error, "deletionGuard.fraction");
  const minError = fieldMessage(error, "deletionGuard.minElements");
  return (
    <Modal title="Deletion guard" aria-label="Deletion guard" isOpen onClose={onClose}>
      <form onSubmit={(e) => void save(e)} noValidate>
        <ModalContent className="portal-dialog-fields">
          <Hint>
            A complete file can still be the wrong one (one storey exported over the whole building). The guard holds a
            file whose synchronization would delete a large share of the elements it has in the iModel: nothing of that
            file is written, and its task says how many elements would go. Synchronize and apply deletions then applies
            them, when the file is right.
          </Hint>
          <ToggleSwitch
            label="Hold files that would lose many elements"
            checked={enabled}
            onChange={(e) => setEnabled(e.target.checked)}
          />
          <LabeledInput
            label="Hold when more than this share of a file's elements would be deleted (%)"
            type="number"
            inputMode="decimal"
            min={0}
            max={99.9}
            step="any"
            value={share}
            disabled={!enabled}
            onChange={(e) => setShare(e.target.value)}
            status={shareError ? "negative" : undefined}
            message={shareError ? `${shareError}; this field is in percent (50 means a share of 0.5)` : undefined}
          />
          <LabeledInput
            label="...and at least this many elements"
            type="number"
            inputMode="numeric"
            min={1}
            step={1}
            value={minElements}
            disabled={!enabled}
            onChange={(e) => setMinElements(e.target.value)}
            status={minError ? "negative" : undefined}
            message={minError}
          />
          {isFieldError(error, ["deletionGuard"]) ? null : <ErrorAlert error={error} what="Not saved" />}
        </ModalContent>
        <ModalButtonBar>
          <Button type="submit" styleType="high-visibility" disabled={busy}>
            Save
          </Button>
          <Button type="button" onClick={onClose}>
            Cancel
          </Button>
        </ModalButtonBar>
      </form>
    </Modal>
  );
}

/** The files the latest run held, with the way to apply their deletions. */
export function HeldFiles({
  connection,
  run,
  onConfirmed,
}: {
  connection: Connection;
  run: Run | undefined;
  onConfirmed: (notice: string) => void;
}) {
  const held = heldTasks(run);
  const [confirming, setConfirming] = useState(false);
  if (held.length === 0) return null;
  return (
    <Alert type="warning" className="portal-alert" data-testid="held-files">
      <div className="portal-held">
        <Text as="p">
          <strong>
            The deletion guard held {plural(held.length, "file")} in the latest run, to protect data in the iModel.
          </strong>{" "}
          Nothing of {held.length === 1 ? "it" : "them"} was written:
        </Text>
        <ul>
          {held.map((t) => (
            <li key={t.sourceFileId}>{heldText(t)}.</li>
          ))}
        </ul>
        <Text as="p">
          If the files are right (elements really were removed), synchronize and apply the deletions. If not, replace
          the files and synchronize as usual.
        </Text>
        {connection.status === "Active" ? (
          <Button styleType="high-visibility" onClick={() => setConfirming(true)}>
            Synchronize and apply deletions
          </Button>
        ) : null}
      </div>
      {confirming ? (
        <ConfirmDeletionsDialog
          connection={connection}
          held={held}
          onClose={() => setConfirming(false)}
          onDone={(notice) => {
            setConfirming(false);
            onConfirmed(notice);
          }}
        />
      ) : null}
    </Alert>
  );
}

function ConfirmDeletionsDialog({
  connection,
  held,
  onClose,
  onDone,
}: {
  connection: Connection;
  held: Task[];
  onClose: () => void;
  onDone: (notice: string) => void;
}) {
  const { api } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const title = "Synchronize and apply deletions?";

  async function confirm() {
    setBusy(true);
    setError(undefined);
    try {
      const { status } = await api.send("POST", `/connections/${seg(connection.id)}/run`, { confirmDeletions: true });
      onDone(
        status === 202
          ? "Run queued with the deletions confirmed."
          : "This connection already had an active run: it is shown below. The confirmation applies only to a run it creates: apply the deletions again once that run has ended.",
      );
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose}>
      <ModalContent>
        <Text as="p">This run synchronizes {connection.displayName} and deletes from the iModel:</Text>
        <ul>
          {held.map((t) => (
            <li key={t.sourceFileId}>{heldText(t)}</li>
          ))}
        </ul>
        <Text as="p">
          The deletion guard holds none of this run&apos;s files, so every element that is no longer in its file is
          deleted (also in files that changed since). Deleted elements come back only when their files hold them again.
        </Text>
        <ErrorAlert error={error} what="No run was started" />
      </ModalContent>
      <ModalButtonBar>
        <Button styleType="high-visibility" onClick={() => void confirm()} disabled={busy}>
          Synchronize and apply deletions
        </Button>
        <Button onClick={onClose}>Cancel</Button>
      </ModalButtonBar>
    </Modal>
  );
}
