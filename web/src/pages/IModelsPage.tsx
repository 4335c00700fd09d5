/** The iModels the service writes: name, creation time, which file set its geographic coordinate system. */
import { Anchor, Button, LabeledInput, Modal, ModalButtonBar, ModalContent, Text } from "@itwin/itwinui-react";
import { useState, type FormEvent } from "react";
import { ErrorAlert, fieldMessage, isFieldError, PageHeading } from "../components";
import { useSession } from "../context";
import { formatDateTime } from "../format";
import { href, navigate, usePolled } from "../hooks";
import type { IModel } from "../types";

export function IModelsPage() {
  const { api } = useSession();
  const iModels = usePolled(
    () => api.get<{ iModels: IModel[] }>("/imodels?$top=1000").then((b) => b.iModels),
    () => 30_000,
    [api],
  );
  const [creating, setCreating] = useState(false);

  return (
    <>
      <PageHeading title="iModels">
        <Button styleType="high-visibility" onClick={() => setCreating(true)}>
          New iModel
        </Button>
      </PageHeading>
      <ErrorAlert error={iModels.error} what="The iModels could not be read" />
      {iModels.data?.length === 0 ? <Text as="p">No iModel yet. Create one, then add connections to it.</Text> : null}
      {iModels.data && iModels.data.length > 0 ? (
        <div className="portal-table-wrap">
          <table className="portal-table">
            <caption className="portal-visually-hidden">iModels</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">Geographic coordinate system</th>
              </tr>
            </thead>
            <tbody>
              {iModels.data.map((m) => (
                <tr key={m.id}>
                  <td>
                    <Anchor href={href("imodels", m.id)}>{m.name}</Anchor>
                  </td>
                  <td>{formatDateTime(m.createdDateTime)}</td>
                  <td>{m.gcsDefinedBy ? `set by ${m.gcsDefinedBy.path}` : "not set"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {creating ? <NewIModelDialog onClose={() => setCreating(false)} /> : null}
    </>
  );
}

function NewIModelDialog({ onClose }: { onClose: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { body } = await api.send<{ iModel: IModel }>("POST", "/imodels", { name });
      onClose();
      navigate("imodels", body.iModel.id);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <Modal title="New iModel" aria-label="New iModel" isOpen onClose={onClose}>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <ModalContent>
          <LabeledInput
            label="Name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            required
            status={fieldMessage(error, "name") ? "negative" : undefined}
            message={fieldMessage(error, "name")}
          />
          {isFieldError(error, ["name"]) ? null : <ErrorAlert error={error} />}
        </ModalContent>
        <ModalButtonBar>
          <Button type="submit" styleType="high-visibility" disabled={busy}>
            Create
          </Button>
          <Button type="button" onClick={onClose}>
            Cancel
          </Button>
        </ModalButtonBar>
      </form>
    </Modal>
  );
}
