/**
 * What deleting a connection or unmapping a composite model with its data would remove, before the user confirms: the
 * API's dry run (`DELETE ...?mode=deleteData&dryRun=true`, README.md "Run control", Dry runs) counts it per file in
 * the iModel itself, changing nothing. A refusal of the dry run is the refusal the real request would get.
 */
import { ProgressRadial, Text } from "@itwin/itwinui-react";
import { ApiRequestError } from "./api";
import { ErrorAlert, Hint } from "./components";
import { useSession } from "./context";
import { plural } from "./format";
import { usePolled } from "./hooks";
import type { RemovalCounts, RemovalPreview } from "./types";

/**
 * Rows removed from the iModel's elements table for these counts: elements, types and materials, partitions, links,
 * external sources.
 */
export const elementRows = (c: RemovalCounts) =>
  c.elements + c.definitions + c.partitions + c.links + c.externalSources;

/**
 * The dry run of a removal with its data, read once when shown.
 * @param path the request's path without its query (`/connections/{id}` or `/connections/{id}/sourceFiles/{fileId}`).
 */
export function RemovalPreviewView({ path }: { path: string }) {
  const { api } = useSession();
  const preview = usePolled(
    async () =>
      (await api.send<{ preview: RemovalPreview }>("DELETE", `${path}?mode=deleteData&dryRun=true`)).body.preview,
    () => 0,
    [api, path],
  );
  const p = preview.data;
  if (preview.error)
    return preview.error instanceof ApiRequestError && preview.error.status !== 503 ? (
      <ErrorAlert error={preview.error} what="Deleting the data would be refused" />
    ) : (
      <ErrorAlert error={preview.error} what="What would be removed could not be counted" />
    );
  if (!p)
    return (
      <div className="portal-preview-loading" role="status">
        <ProgressRadial indeterminate size="small" aria-hidden="true" />
        <Text as="span">Counting what would be removed from the iModel…</Text>
      </div>
    );
  const withData = p.files.filter((f) => f.hasData);
  const fileElements = p.files.reduce((n, f) => n + f.removes.elements, 0);
  return (
    <div className="portal-removal-preview" data-testid="removal-preview">
      <Text as="p">
        {withData.length === 0 && !p.subject?.exists
          ? "The iModel holds no data of these files: nothing would be removed."
          : `This would remove ${plural(fileElements, "element")} of ${plural(withData.length, "file")}${p.subject?.exists ? " and the connection's subject" : ""} from the iModel, with their models, provenance and links:`}
      </Text>
      <div className="portal-table-wrap">
        <table className="portal-table" aria-label="What would be removed">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Elements</th>
              <th scope="col">Models</th>
              <th scope="col">Aspects</th>
              <th scope="col">Links</th>
            </tr>
          </thead>
          <tbody>
            {p.files.map((f) => (
              <tr key={f.sourceFileId} data-testid="removal-file" data-path={f.path}>
                <td>
                  <span className="portal-path">{f.path}</span>
                  {f.role === "ReferenceFile" ? (
                    <Text variant="small" isMuted as="span">
                      {" "}
                      reference file
                    </Text>
                  ) : null}
                  {f.hasData ? null : <Hint>no data in the iModel</Hint>}
                </td>
                <Counts c={f.removes} />
              </tr>
            ))}
            {p.subject?.exists ? (
              <tr data-testid="removal-subject">
                <td>The connection&apos;s subject and what is left under it</td>
                <Counts c={{ ...p.subject, definitions: 0, partitions: 0, links: 0, externalSources: 0 }} />
              </tr>
            ) : null}
          </tbody>
          <tfoot>
            <tr data-testid="removal-total">
              <th scope="row">Total</th>
              <Counts c={p.totals} />
            </tr>
          </tfoot>
        </table>
      </div>
      <Hint>
        Counted in the iModel now. Elements: the files&apos; own elements; models: their models (each with its
        partition); aspects: every aspect of what is removed (provenance included); links: repository links. In all,{" "}
        {elementRows(p.totals).toLocaleString()} rows of the iModel&apos;s elements table (with partitions and external
        sources).
      </Hint>
      {p.clearsGeoreference ? (
        <Text as="p" className="portal-warning-text">
          This connection defines the iModel&apos;s geographic coordinate system and is its last connection: the
          iModel&apos;s georeference is cleared too.
        </Text>
      ) : null}
    </div>
  );
}

function Counts({ c }: { c: RemovalCounts }) {
  return (
    <>
      <td data-count="elements">{c.elements.toLocaleString()}</td>
      <td data-count="models">{c.models.toLocaleString()}</td>
      <td data-count="aspects">{c.aspects.toLocaleString()}</td>
      <td data-count="links">{c.links.toLocaleString()}</td>
    </>
  );
}
