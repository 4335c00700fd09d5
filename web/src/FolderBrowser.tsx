/**
 * Browses the folders the service may read (`GET /sources`, inside SOURCE_ROOTS only) and picks files, each shown
 * with the connector type a connection would use for it. Files no connector reads cannot be picked.
 */
import { Button, Checkbox, ProgressRadial, Text } from "@itwin/itwinui-react";
import { seg, type Api } from "./api";
import { ErrorAlert, FieldStatus } from "./components";
import { formatDateTime, formatSize } from "./format";
import { usePolled } from "./hooks";
import type { SourceFileEntry, SourceListing } from "./types";

export interface FolderBrowserProps {
  api: Api;
  /** The folder shown (absolute); null: the SOURCE_ROOTS. */
  path: string | null;
  onPathChange: (path: string | null) => void;
  /** A folder the browser never goes above (e.g. a connection's source); absent: up to the roots. */
  floor?: string;
  selected: ReadonlySet<string>;
  onToggle: (file: SourceFileEntry, on: boolean) => void;
  /** Files that cannot be picked, with the reason (e.g. already mapped by this connection). */
  unavailable?: ReadonlyMap<string, string>;
  /** The API's words about picked files (by absolute path), shown next to them. */
  fileErrors?: ReadonlyMap<string, string>;
  /** The API's words about the folder, shown under it. */
  folderError?: string;
  /** Accessible name of the file table. */
  label: string;
}

export function FolderBrowser(props: FolderBrowserProps) {
  const { api, path, onPathChange, floor, selected, onToggle, unavailable, fileErrors, folderError, label } = props;
  const listing = usePolled(
    () => api.get<SourceListing>(path === null ? "/sources" : `/sources?path=${seg(path)}`),
    () => 0,
    [api, path],
  );
  const data = listing.data;
  const up = data?.folder
    ? floor !== undefined && data.folder.path === floor
      ? undefined
      : data.folder.parent
    : undefined;
  const atFloor = floor !== undefined && data?.folder?.path === floor;

  return (
    <div className="portal-browser">
      <div className="portal-browser-bar">
        <Text className="portal-browser-path" aria-live="polite">
          {path === null ? "Folders this service may read (SOURCE_ROOTS)" : `Folder ${path}`}
        </Text>
        {path !== null && !atFloor ? (
          <Button size="small" onClick={() => onPathChange(up ?? null)}>
            {up ? "Up one folder" : "Back to the roots"}
          </Button>
        ) : null}
      </div>
      <FieldStatus>{folderError}</FieldStatus>
      <ErrorAlert error={listing.error} what="The folder could not be read" />
      {!data && !listing.error ? <ProgressRadial indeterminate size="small" aria-label="Reading the folder" /> : null}
      {data ? (
        <div className="portal-table-wrap">
          <table className="portal-table" aria-label={label}>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Connector</th>
                <th scope="col">Size</th>
                <th scope="col">Modified</th>
              </tr>
            </thead>
            <tbody>
              {data.folders.map((f) => (
                <tr key={`d:${f.path}`}>
                  <td colSpan={4}>
                    <Button
                      styleType="borderless"
                      size="small"
                      className="portal-folder-button"
                      onClick={() => onPathChange(f.path)}
                      aria-label={`Open folder ${f.name}`}
                    >
                      <span aria-hidden="true" className="portal-folder-icon" />
                      {f.name}
                    </Button>
                  </td>
                </tr>
              ))}
              {data.files.map((f) => {
                const reason =
                  unavailable?.get(f.path) ?? (f.connectorType ? undefined : "no connector reads this file");
                const error = fileErrors?.get(f.path);
                return (
                  <tr key={`f:${f.path}`} className={error ? "portal-row-error" : undefined}>
                    <td>
                      <Checkbox
                        label={f.name}
                        checked={selected.has(f.path)}
                        disabled={reason !== undefined}
                        status={error ? "negative" : undefined}
                        onChange={(e) => onToggle(f, e.target.checked)}
                      />
                      {reason ? (
                        <Text variant="small" isMuted as="span" className="portal-reason">{` ${reason}`}</Text>
                      ) : null}
                      <FieldStatus>{error}</FieldStatus>
                    </td>
                    <td>{f.connectorType ?? "none"}</td>
                    <td>{formatSize(f.size)}</td>
                    <td>{formatDateTime(f.modifiedDateTime)}</td>
                  </tr>
                );
              })}
              {data.folders.length === 0 && data.files.length === 0 ? (
                <tr>
                  <td colSpan={4}>This folder is empty.</td>
                </tr>
              ) : null}
            </tbody>
          </table>
          {data.truncated ? <Text as="p">Only the first entries of this folder are shown.</Text> : null}
        </div>
      ) : null}
    </div>
  );
}
