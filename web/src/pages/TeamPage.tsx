/**
 * An iModel's team (docs/product-rules.md "Teams"; README.md "Authentication and users"): its members with their role,
 * who added them and when, and their first interaction with the iModel (only members who have interacted can own
 * connections), with the connections each owns. Managers and administrators add members (an administrator picks from
 * the users; a manager gives the user id the person reads on their Account page, since only administrators list
 * users), change their role and remove them; the refusal to remove a member who owns connections is shown as the API
 * words it, with those connections.
 */
import {
  Anchor,
  Breadcrumbs,
  Button,
  ComboBox,
  LabeledInput,
  LabeledSelect,
  Modal,
  ModalButtonBar,
  ModalContent,
  Select,
  Text,
} from "@itwin/itwinui-react";
import { useId, useState, type FormEvent } from "react";
import { ApiRequestError, seg } from "../api";
import { ErrorAlert, fieldMessage, Hint, PageHeading } from "../components";
import { useSession } from "../context";
import { formatDateTime, plural } from "../format";
import { href, usePolled } from "../hooks";
import { TEAM_ROLES, type Connection, type IModel, type Member, type TeamRole, type UserRecord } from "../types";
import { isNotFound, NotSharedPage } from "./NotFoundPage";

const ROLE_OPTIONS = [
  { value: "member" as TeamRole, label: "Member: sees the iModel, creates and runs connections" },
  { value: "manager" as TeamRole, label: "Manager: also adds, changes and removes members" },
];
const roleLabel = (r: TeamRole) => (r === "manager" ? "Manager" : "Member");

export function TeamPage({ iModelId }: { iModelId: string }) {
  const { api, user } = useSession();
  const isAdmin = user.role === "admin";
  const [notice, setNotice] = useState<string>();
  const [removing, setRemoving] = useState<Member>();
  const [roleError, setRoleError] = useState<unknown>();

  const team = usePolled(
    async () => {
      const [{ iModel }, { members }, { connections }] = await Promise.all([
        api.get<{ iModel: IModel }>(`/imodels/${seg(iModelId)}`),
        api.get<{ members: Member[] }>(`/imodels/${seg(iModelId)}/members?$top=1000`),
        api.get<{ connections: Connection[] }>(`/connections?iModelId=${seg(iModelId)}&$top=1000`),
      ]);
      return { iModel, members, connections };
    },
    () => 15_000,
    [api, iModelId],
  );
  const users = usePolled(
    async () => (isAdmin ? (await api.get<{ users: UserRecord[] }>("/users?$top=1000")).users : []),
    () => 0,
    [api, isAdmin],
  );

  if (isNotFound(team.error)) return <NotSharedPage kind="iModel" id={iModelId} />;
  const data = team.data;
  const name = data?.iModel.name ?? "iModel";
  const me = data?.members.find((m) => m.userId === user.id);
  const mayManage = isAdmin || me?.role === "manager";
  const nameOf = (userId: string | null) => {
    if (userId === null) return "carried over from before teams";
    if (userId === user.id) return `${user.name} (you)`;
    const known = data?.members.find((m) => m.userId === userId) ?? users.data?.find((u) => u.id === userId);
    return known ? known.name : userId;
  };
  const ownedBy = (userId: string) => (data?.connections ?? []).filter((c) => c.owner?.id === userId);

  async function setRole(m: Member, role: TeamRole) {
    setRoleError(undefined);
    setNotice(undefined);
    try {
      await api.send("POST", `/imodels/${seg(iModelId)}/members`, { userId: m.userId, role });
      setNotice(`${m.name} is now a ${role} of the team.`);
      await team.reload();
    } catch (err) {
      setRoleError(err);
    }
  }

  return (
    <>
      <Breadcrumbs className="portal-breadcrumbs">
        <Breadcrumbs.Item href={href("imodels")}>iModels</Breadcrumbs.Item>
        <Breadcrumbs.Item href={href("imodels", iModelId)}>{name}</Breadcrumbs.Item>
        <Breadcrumbs.Item aria-current="page">Team</Breadcrumbs.Item>
      </Breadcrumbs>
      <PageHeading title={`Team of ${name}`} />
      <ErrorAlert error={team.error} what="The team could not be read" />
      {data ? (
        <Text as="p" data-testid="your-role">
          {me
            ? me.role === "manager"
              ? "You are a manager of this team: you add members, change their roles and remove them."
              : "You are a member of this team. Its managers add and remove members."
            : isAdmin
              ? "You are an administrator, not in this team: you see every iModel and may manage its team."
              : ""}
        </Text>
      ) : null}
      <Hint>
        Only the members of its team and administrators see an iModel, its connections and its runs; to anyone else they
        do not exist. Any member may create connections and run them. A connection&apos;s owner can only be a member who
        has used the iModel since being added (first interaction below).
      </Hint>
      {notice ? (
        <Text as="p" role="status" className="portal-notice">
          {notice}
        </Text>
      ) : null}
      <ErrorAlert error={roleError} what="The role was not changed" />
      <h2 className="portal-h2">Members</h2>
      {data ? (
        <div className="portal-table-wrap">
          <table className="portal-table" aria-label="Team members">
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Role</th>
                <th scope="col">Added</th>
                <th scope="col">First interaction</th>
                <th scope="col">Owns</th>
                {mayManage ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {data.members.map((m) => {
                const owned = ownedBy(m.userId);
                return (
                  <tr key={m.userId} data-testid="member" data-user={m.userId}>
                    <td>
                      {m.name}
                      {m.userId === user.id ? " (you)" : ""}
                      <Hint>{m.email}</Hint>
                    </td>
                    <td>
                      {mayManage ? (
                        <Select<TeamRole>
                          native
                          size="small"
                          className="portal-role-select"
                          triggerProps={{ "aria-label": `Role of ${m.name}` }}
                          value={m.role}
                          options={TEAM_ROLES.map((r) => ({ value: r, label: roleLabel(r) }))}
                          onChange={(r: string) => void setRole(m, r as TeamRole)}
                        />
                      ) : (
                        roleLabel(m.role)
                      )}
                    </td>
                    <td>
                      {formatDateTime(m.addedDateTime)}
                      <Hint>by {nameOf(m.addedBy)}</Hint>
                    </td>
                    <td>
                      {m.firstInteractionDateTime ? (
                        formatDateTime(m.firstInteractionDateTime)
                      ) : (
                        <>
                          not yet
                          <Hint>cannot own connections until they use the iModel</Hint>
                        </>
                      )}
                    </td>
                    <td>
                      {owned.length === 0
                        ? "no connection"
                        : owned.map((c, i) => (
                            <span key={c.id}>
                              {i > 0 ? ", " : ""}
                              <Anchor href={href("connections", c.id)}>{c.displayName}</Anchor>
                            </span>
                          ))}
                    </td>
                    {mayManage ? (
                      <td>
                        <Button size="small" onClick={() => setRemoving(m)} aria-label={`Remove ${m.name}`}>
                          Remove
                        </Button>
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {data && data.members.length === 0 ? (
        <Text as="p">
          This iModel has no team yet (it was made before teams existed and has no connection): an administrator adds a
          manager.
        </Text>
      ) : null}
      {data && mayManage ? (
        <AddMember
          iModelId={iModelId}
          members={data.members}
          users={isAdmin ? users.data : undefined}
          onAdded={(text) => {
            setNotice(text);
            void team.reload();
          }}
        />
      ) : null}
      {data && !mayManage ? (
        <Hint>
          To add someone, ask a manager of this team (
          {data.members
            .filter((m) => m.role === "manager")
            .map((m) => m.name)
            .join(", ") || "none yet"}
          ) or an administrator.
        </Hint>
      ) : null}
      {removing && data ? (
        <RemoveMemberDialog
          iModel={data.iModel}
          member={removing}
          onClose={() => setRemoving(undefined)}
          onRemoved={() => {
            setRemoving(undefined);
            setNotice(`${removing.name} was removed from the team.`);
            void team.reload();
          }}
        />
      ) : null}
    </>
  );
}

function AddMember({
  iModelId,
  members,
  users,
  onAdded,
}: {
  iModelId: string;
  members: Member[];
  /** Every user (for an administrator); undefined for a manager, who types the user id. */
  users: UserRecord[] | undefined;
  onAdded: (notice: string) => void;
}) {
  const { api } = useSession();
  const [userId, setUserId] = useState("");
  const [role, setRole] = useState<TeamRole>("member");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const pickId = useId();
  const inTeam = new Set(members.map((m) => m.userId));

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError(undefined);
    if (!userId.trim()) {
      setError(new Error(users ? "Pick a user." : "Enter the user id."));
      return;
    }
    setBusy(true);
    try {
      const { status, body } = await api.send<{ member: Member; changed?: boolean }>(
        "POST",
        `/imodels/${seg(iModelId)}/members`,
        { userId: userId.trim(), role },
      );
      const m = body.member;
      onAdded(
        status === 201
          ? `${m.name} was added as a ${m.role}. They see the iModel now, and can own connections once they have used it.`
          : body.changed
            ? `${m.name} was already in the team: now a ${m.role}.`
            : `${m.name} was already a ${m.role} of the team.`,
      );
      setUserId("");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const userError = fieldMessage(error, "userId");
  return (
    <form onSubmit={(e) => void submit(e)} noValidate className="portal-form portal-add-member">
      <h2 className="portal-h2">Add a member</h2>
      {users ? (
        <div className="portal-field">
          <label id={pickId} className="portal-label" htmlFor={`${pickId}-input`}>
            User
          </label>
          <ComboBox<string>
            options={users
              .filter((u) => !inTeam.has(u.id))
              .map((u) => ({ value: u.id, label: `${u.name} (${u.email})` }))}
            value={userId || null}
            onChange={(v: string) => setUserId(v ?? "")}
            inputProps={{ id: `${pickId}-input`, "aria-labelledby": pickId, placeholder: "Type a name or email" }}
          />
          {userError ? <Text className="portal-warning-text">{userError}</Text> : null}
        </div>
      ) : (
        <LabeledInput
          label="User id"
          value={userId}
          onChange={(e) => setUserId(e.target.value)}
          required
          status={userError ? "negative" : undefined}
          message={
            userError ??
            "Only administrators can list users: ask the person for the user id shown on their Account page (under their name at the top right)."
          }
        />
      )}
      <LabeledSelect<TeamRole>
        label="Role"
        native
        value={role}
        options={ROLE_OPTIONS}
        onChange={(r: string) => setRole(r as TeamRole)}
      />
      {userError ? null : <ErrorAlert error={error} what="Nobody was added" />}
      <div className="portal-actions">
        <Button type="submit" styleType="high-visibility" disabled={busy}>
          Add to the team
        </Button>
      </div>
    </form>
  );
}

function RemoveMemberDialog({
  iModel,
  member,
  onClose,
  onRemoved,
}: {
  iModel: IModel;
  member: Member;
  onClose: () => void;
  onRemoved: () => void;
}) {
  const { api, user } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const title = `Remove ${member.name} from the team`;

  async function remove() {
    setBusy(true);
    setError(undefined);
    try {
      await api.send("DELETE", `/imodels/${seg(iModel.id)}/members/${seg(member.userId)}`);
      onRemoved();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  const owns = error instanceof ApiRequestError && error.code === "MemberOwnsConnections" ? error : undefined;
  return (
    <Modal title={title} aria-label={title} isOpen onClose={onClose}>
      <ModalContent>
        <Text as="p">
          {member.userId === user.id ? "You" : member.name} will no longer see {iModel.name}, its connections and its
          runs: to {member.userId === user.id ? "you" : "them"} they will not exist. They can be added again later.
        </Text>
        {owns ? (
          <div role="alert" className="portal-refusal" data-testid="member-owns-connections">
            <Text as="p">
              {owns.message} <span className="portal-code">({owns.code})</span>
            </Text>
            <ul>
              {owns.details.map((d) => {
                const id = d.target?.replace(/^\/connections\//, "");
                return (
                  <li key={d.target ?? d.message}>
                    {id ? <Anchor href={href("connections", id)}>{d.message}</Anchor> : d.message}
                  </li>
                );
              })}
            </ul>
            <Hint>
              Open each connection and give it another owner (Owner), then remove {member.name}:{" "}
              {plural(owns.details.length, "connection")} to go.
            </Hint>
          </div>
        ) : (
          <ErrorAlert error={error} what="The member was not removed" />
        )}
      </ModalContent>
      <ModalButtonBar>
        <Button styleType="high-visibility" onClick={() => void remove()} disabled={busy}>
          Remove
        </Button>
        <Button onClick={onClose}>Cancel</Button>
      </ModalButtonBar>
    </Modal>
  );
}
