/**
 * Users, for administrators (README.md "Authentication and users": `GET /users`, `POST /users`): who may sign in, and a
 * new user with the API key shown this once, so that people can be added to iModel teams without curl.
 */
import { Button, LabeledInput, LabeledSelect, Modal, ModalButtonBar, ModalContent, Text } from "@itwin/itwinui-react";
import { useState, type FormEvent } from "react";
import { ErrorAlert, fieldMessage, Hint, isFieldError, PageHeading } from "../components";
import { useSession } from "../context";
import { formatDateTime } from "../format";
import { usePolled } from "../hooks";
import type { UserRecord } from "../types";
import { CopyableValue } from "./AccountPage";

export function UsersPage() {
  const { api, user } = useSession();
  const users = usePolled(
    () => api.get<{ users: UserRecord[] }>("/users?$top=1000").then((b) => b.users),
    () => 30_000,
    [api],
  );
  const [creating, setCreating] = useState(false);
  return (
    <>
      <PageHeading title="Users">
        {user.role === "admin" ? (
          <Button styleType="high-visibility" onClick={() => setCreating(true)}>
            New user
          </Button>
        ) : null}
      </PageHeading>
      <ErrorAlert error={users.error} what="The users could not be read" />
      <Hint>
        Each user signs in with their own API key. To let someone work on an iModel, add them to its team (Team, on the
        iModel&apos;s page).
      </Hint>
      {users.data ? (
        <div className="portal-table-wrap">
          <table className="portal-table" aria-label="Users">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">User id</th>
              </tr>
            </thead>
            <tbody>
              {users.data.map((u) => (
                <tr key={u.id}>
                  <td>{u.name}</td>
                  <td>{u.email}</td>
                  <td>{u.role === "admin" ? "administrator" : "user"}</td>
                  <td>{formatDateTime(u.createdDateTime)}</td>
                  <td>
                    <code>{u.id}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {creating ? (
        <NewUserDialog
          onClose={() => {
            setCreating(false);
            void users.reload();
          }}
        />
      ) : null}
    </>
  );
}

function NewUserDialog({ onClose }: { onClose: () => void }) {
  const { api } = useSession();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [role, setRole] = useState("user");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [created, setCreated] = useState<{ user: UserRecord; apiKey: string }>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { body } = await api.send<{ user: UserRecord; apiKey: string }>("POST", "/users", { email, name, role });
      setCreated(body);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal title="New user" aria-label="New user" isOpen onClose={onClose}>
      {created ? (
        <>
          <ModalContent>
            <div role="status" data-testid="new-user-key">
              <Text as="p">
                <strong>{created.user.name}</strong> ({created.user.email}) can sign in with this API key. It is shown
                this once: give it to them now, by a private channel.
              </Text>
              <CopyableValue value={created.apiKey} label="the API key" />
              <Hint>User id: {created.user.id} (managers add them to iModel teams with it).</Hint>
            </div>
          </ModalContent>
          <ModalButtonBar>
            <Button styleType="high-visibility" onClick={onClose}>
              Done
            </Button>
          </ModalButtonBar>
        </>
      ) : (
        <form onSubmit={(e) => void submit(e)} noValidate>
          <ModalContent>
            <LabeledInput
              label="Email"
              type="email"
              value={email}
              onChange={(e) => setEmail(e.target.value)}
              required
              status={fieldMessage(error, "email") ? "negative" : undefined}
              message={fieldMessage(error, "email")}
            />
            <LabeledInput
              label="Name"
              value={name}
              onChange={(e) => setName(e.target.value)}
              required
              status={fieldMessage(error, "name") ? "negative" : undefined}
              message={fieldMessage(error, "name")}
            />
            <LabeledSelect<string>
              label="Role"
              native
              value={role}
              options={[
                { value: "user", label: "User: works in the iModels whose teams they are in" },
                { value: "admin", label: "Administrator: sees and may change everything" },
              ]}
              onChange={(v: string) => setRole(v)}
            />
            {isFieldError(error, ["email", "name"]) ? null : <ErrorAlert error={error} />}
          </ModalContent>
          <ModalButtonBar>
            <Button type="submit" styleType="high-visibility" disabled={busy}>
              Create user
            </Button>
            <Button type="button" onClick={onClose}>
              Cancel
            </Button>
          </ModalButtonBar>
        </form>
      )}
    </Modal>
  );
}
