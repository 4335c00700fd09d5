/**
 * What a run changed (README.md "What a run changed"): the elements it inserted, updated or deleted, by source
 * identifier (IFC GlobalId, DXF handle), file, class and element id, a page at a time, filtered by operation. The
 * lists are kept for the newest runs of each connection only: an older run's list is said to be no longer kept.
 */
import { Button, LabeledSelect, Modal, ModalButtonBar, ModalContent, Text } from "@itwin/itwinui-react";
import { useState } from "react";
import { ApiRequestError, seg } from "./api";
import { ErrorAlert, Hint } from "./components";
import { useSession } from "./context";
import { formatDateTime, plural } from "./format";
import { usePolled } from "./hooks";
import { CHANGE_OPERATIONS, type ChangeOperation, type ChangePage, type Run } from "./types";

/** Entries per page. */
export const CHANGES_PAGE = 50;

/** The words shown when a run's change list is not kept: pruned, a delete job, or a run without one. */
export function changeListText(run: Pick<Run, "changeList" | "kind" | "state">): string | undefined {
  if (run.kind === "delete") return "A delete job has no change list: its tasks give the counts of what it removed.";
  if (run.changeList === "pruned")
    return "No longer kept: the elements a run changed are listed for the newest runs of each connection only.";
  if (run.changeList === "none" && run.state === "Completed") return "Not recorded for this run.";
  return undefined;
}

export function ChangesDialog({ run, onClose }: { run: Run; onClose: () => void }) {
  const { api } = useSession();
  const [operation, setOperation] = useState<ChangeOperation | "">("");
  const [skip, setSkip] = useState(0);
  const page = usePolled(
    () =>
      api.get<ChangePage>(
        `/connections/${seg(run.connectionId)}/runs/${seg(run.id)}/changes?$top=${CHANGES_PAGE}&$skip=${skip}${operation ? `&operation=${operation}` : ""}`,
      ),
    () => 0,
    [api, run.connectionId, run.id, operation, skip],
  );
  const title = `Elements changed by the run of ${formatDateTime(run.queuedDateTime)}`;
  const notKept = page.error instanceof ApiRequestError && page.error.code === "ChangeListNotKept";
  const data = page.data;
  const total = data
    ? operation
      ? data.counts[operation]
      : CHANGE_OPERATIONS.reduce((n, o) => n + data.counts[o], 0)
    : 0;
  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose} className="portal-wide-modal">
      <ModalContent>
        {notKept ? (
          <Text as="p" role="status" data-testid="changes-not-kept">
            The list of the elements this run changed is no longer kept: {(page.error as Error).message}
          </Text>
        ) : (
          <>
            <div className="portal-changes-head">
              <LabeledSelect<string>
                label="Show"
                native
                value={operation}
                options={[
                  { value: "", label: "All changes" },
                  ...CHANGE_OPERATIONS.map((o) => ({ value: o, label: `${o.charAt(0).toUpperCase()}${o.slice(1)}` })),
                ]}
                onChange={(v: string) => {
                  setOperation(CHANGE_OPERATIONS.find((o) => o === v) ?? "");
                  setSkip(0);
                }}
              />
              {data ? (
                <Text as="p" data-testid="changes-counts">
                  This run: {data.counts.inserted.toLocaleString()} inserted, {data.counts.updated.toLocaleString()}{" "}
                  updated, {data.counts.deleted.toLocaleString()} deleted.
                </Text>
              ) : null}
            </div>
            <ErrorAlert error={page.error} what="The change list could not be read" />
            {data && data.changes.length === 0 ? (
              <Text as="p" role="status" data-testid="changes-empty">
                {operation ? `No element ${operation} by this run.` : "This run changed no element."}
              </Text>
            ) : null}
            {data && data.changes.length > 0 ? (
              <>
                <div className="portal-table-wrap">
                  <table className="portal-table" aria-label="Changed elements">
                    <thead>
                      <tr>
                        <th scope="col">Change</th>
                        <th scope="col">Identifier</th>
                        <th scope="col">File</th>
                        <th scope="col">Class</th>
                        <th scope="col">Element id</th>
                      </tr>
                    </thead>
                    <tbody>
                      {data.changes.map((c) => (
                        <tr
                          key={`${c.operation} ${c.sourceFileId} ${c.identifier}`}
                          data-testid="change"
                          data-operation={c.operation}
                          data-identifier={c.identifier}
                        >
                          <td>{c.operation}</td>
                          <td>
                            <code>{c.identifier}</code>
                          </td>
                          <td>
                            <span className="portal-path">{c.path}</span>
                          </td>
                          <td>{c.className ?? "(not known)"}</td>
                          <td>
                            <code>{c.elementId}</code>
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                <div className="portal-pager" role="group" aria-label="Pages of changed elements">
                  <Text as="span" data-testid="changes-range">
                    {(skip + 1).toLocaleString()}–{(skip + data.changes.length).toLocaleString()} of{" "}
                    {plural(total, "element")}
                  </Text>
                  <Button size="small" disabled={skip === 0} onClick={() => setSkip(Math.max(0, skip - CHANGES_PAGE))}>
                    Previous page
                  </Button>
                  <Button size="small" disabled={!data._links.next} onClick={() => setSkip(skip + CHANGES_PAGE)}>
                    Next page
                  </Button>
                </div>
              </>
            ) : null}
            <Hint>
              Identifier: the IFC GlobalId or DXF handle in the source file. Class: the IFC class or DXF entity type
              (not known for a deleted DXF element). Elements compared unchanged are not listed.
            </Hint>
          </>
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
