/**
 * Activities of the owner token workflow and of ownership notices: mirror the token into MongoDB, and email owners.
 * Every email is claimed in the `notices` collection (`_id` names what it is about) before it is sent, so a retried
 * activity never sends the same notice twice once it went out.
 */
import { describeSchedule } from "../domain/schedule";
import type { ConnectionRecord } from "../domain/model";
import type { OwnerTokenMirror } from "../domain/token";
import type { UserRecord } from "../domain/users";
import { isDuplicateKey, peopleCollections, userLockKey, type NoticeRecord } from "../lib/collections";
import { withRecord } from "../lib/record-writes";
import { readRunTasks } from "../lib/run-tasks";
import { updateConnection } from "../lib/connection-writes";
import type { Store } from "../lib/db";
import { activityLogger, type Logger } from "../lib/logger";
import type { WorkerMetrics } from "../lib/metrics";
import type { WebhookEmitter } from "../lib/webhooks";
import { errorCodeInfo } from "../domain/task-errors";
import type { MailMessage, Mailer } from "./email";
import type { RunFailureNotice } from "./run-events";

export interface OwnerActivityDeps {
  store: Store;
  logger: Logger;
  mailer: Mailer;
  /** Base URL of the API for links in emails. */
  publicApiUrl: string;
  /** Emits `token.expiring` and `token.expired` to the webhooks of the owner's iModels (README.md "Webhooks"). */
  emitter?: WebhookEmitter;
  metrics?: WorkerMetrics;
}

export type OwnershipChangeKind = "given" | "taken";

export interface OwnershipNotice {
  /** Unique per change (the notice's `_id`). */
  noticeId: string;
  connectionId: string;
  /** `given`: the recipient is the new owner; `taken`: the recipient is the previous owner. */
  kind: OwnershipChangeKind;
  to: string;
  newOwnerId: string;
  previousOwnerId?: string;
  changedBy: string;
}

const ts = (iso: string) => iso.replace("T", " ").replace(/\.\d+Z$/, " UTC");

export function createOwnerActivities({ store, logger, mailer, publicApiUrl, emitter, metrics }: OwnerActivityDeps) {
  const people = peopleCollections(store);

  const log = (extra: Record<string, unknown> = {}): Logger => activityLogger(logger, extra);

  /** Sends a notice once. @returns `sent`, or `already` when an earlier attempt sent it. */
  async function sendOnce(
    noticeId: string,
    kind: NoticeRecord["kind"],
    message: MailMessage,
  ): Promise<"sent" | "already"> {
    const now = new Date().toISOString();
    try {
      await people.notices.insertOne({
        _id: noticeId,
        kind,
        to: message.to,
        subject: message.subject,
        state: "sending",
        createdDateTime: now,
      });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await people.notices.findOne({ _id: noticeId });
      if (existing && existing.state !== "sending") return "already";
      // A previous attempt claimed it and failed before recording the send: send now.
    }
    const sent = await mailer.send(message);
    metrics?.notices.inc({ kind });
    await people.notices.updateOne(
      { _id: noticeId },
      { $set: { state: "sent", sentDateTime: new Date().toISOString(), messageId: sent.messageId } },
    );
    return "sent";
  }

  async function ownedConnections(userId: string): Promise<ConnectionRecord[]> {
    return store.connections.find({ ownerId: userId, status: "Active" }).sort({ createdDateTime: 1, _id: 1 }).toArray();
  }

  async function iModelNames(connections: ConnectionRecord[]): Promise<Map<string, string>> {
    const ids = [...new Set(connections.map((c) => c.iModelId))];
    const models = ids.length ? await store.imodels.find({ _id: { $in: ids } }).toArray() : [];
    return new Map(models.map((m) => [m._id, m.name]));
  }

  function connectionLines(connections: ConnectionRecord[], names: Map<string, string>): string {
    return connections
      .map(
        (c) =>
          `  - "${c.displayName}" (connection ${c._id}) of iModel "${names.get(c.iModelId) ?? c.iModelId}", schedule: ${describeSchedule(c.schedule)}`,
      )
      .join("\n");
  }

  /**
   * `token.expiring` / `token.expired` to the webhooks of the iModels where the user owns active connections (each
   * iModel's webhooks see that iModel's connections only; global webhooks see them all).
   */
  async function emitTokenEvent(
    type: "token.expiring" | "token.expired",
    user: UserRecord,
    expiresDateTime: string,
    owned: ConnectionRecord[],
  ): Promise<void> {
    if (!emitter) return;
    const connectionsOf = (iModelId: string | undefined) =>
      owned
        .filter((c) => iModelId === undefined || c.iModelId === iModelId)
        .map((c) => ({ id: c._id, displayName: c.displayName, iModelId: c.iModelId }));
    await emitter.emit({
      type,
      eventId: `${type}:${user._id}:${expiresDateTime}`,
      iModelIds: [...new Set(owned.map((c) => c.iModelId))],
      data: (iModelId) => ({
        user: { id: user._id, email: user.email, name: user.name },
        token: { state: type === "token.expired" ? "Expired" : "Valid", expiresDateTime },
        connections: connectionsOf(iModelId),
      }),
    });
  }

  async function userOf(userId: string): Promise<UserRecord> {
    const user = await people.users.findOne({ _id: userId });
    if (!user) throw new Error(`user ${userId} has no record`);
    return user;
  }

  return {
    /**
     * Writes the token into the user's record and the `ownerToken` of every connection the user owns. Never goes
     * back in time: a mirror of an older token (a late retry) does not overwrite a newer one.
     */
    async mirrorOwnerToken(input: { userId: string; token: OwnerTokenMirror }): Promise<void> {
      const { userId, token } = input;
      // Under the user's lock (lib/record-writes.ts): a key rotation at the same moment is not overwritten.
      const written = await people.users.findOne({ _id: userId }, { projection: { _id: 1 } }).then((u) =>
        u
          ? withRecord(store.db, people.users, userLockKey(userId), userId, async (current, write) => {
              if (current.token && current.token.issuedDateTime > token.issuedDateTime) return false;
              await write({ $set: { token } });
              return true;
            })
          : false,
      );
      if (!written) {
        log({ userId }).info({ token }, "token mirror skipped (user missing or a newer token is recorded)");
        return;
      }
      // One record at a time, each under its lock (lib/connection-writes.ts), and only while this user owns it.
      const owned = await store.connections.find({ ownerId: userId }, { projection: { _id: 1 } }).toArray();
      const ownerToken = { state: token.state, expiresDateTime: token.expiresDateTime };
      for (const { _id } of owned)
        await updateConnection(store, _id, (c) => (c.ownerId === userId ? { $set: { ownerToken } } : undefined));
      log({ userId }).info({ state: token.state, expires: token.expiresDateTime }, "owner token mirrored");
    },

    /**
     * The one email of an expired token: to the owner, naming the connections whose scheduled syncs now fail. Sent only
     * when the user owns connections (nothing is affected otherwise).
     * @returns whether an email went out in this call.
     */
    async notifyTokenExpired(input: { userId: string; expiresDateTime: string }): Promise<boolean> {
      const user = await userOf(input.userId);
      const owned = await ownedConnections(user._id);
      const l = log({ userId: user._id });
      if (owned.length === 0) {
        l.info("token expired; the user owns no connection, no email");
        return false;
      }
      const names = await iModelNames(owned);
      const list = connectionLines(owned, names);
      const subject = `Your imodel-sync token expired: scheduled syncs of ${owned.length === 1 ? `"${owned[0].displayName}"` : `${owned.length} connections`} fail`;
      const text = [
        `Hello ${user.name},`,
        "",
        `your owner token expired on ${ts(input.expiresDateTime)}. Scheduled synchronizations run on behalf of their`,
        "connection's owner, so the scheduled syncs of these connections you own now fail with UserNotAuthenticated:",
        "",
        list,
        "",
        "To renew the token, make any authenticated request to the service, for example:",
        `  curl -H "authorization: Bearer $YOUR_API_KEY" ${publicApiUrl}/users/me`,
        "A fresh token is valid 30 days; scheduled syncs then work again. A manual sync of a connection also renews it:",
        `  curl -X POST -H "authorization: Bearer $YOUR_API_KEY" ${publicApiUrl}/connections/${owned[0]._id}/run`,
        "",
        "-- imodel-sync",
      ].join("\n");
      const outcome = await sendOnce(`token-expired:${user._id}:${input.expiresDateTime}`, "token-expired", {
        to: user.email,
        subject,
        text,
      });
      l.info({ outcome, connections: owned.length }, "token expiry notice");
      await emitTokenEvent("token.expired", user, input.expiresDateTime, owned);
      return outcome === "sent";
    },

    /** The warning some days before expiry, when no visit refreshed the token yet (only to users who own connections). */
    async notifyTokenExpiring(input: { userId: string; expiresDateTime: string }): Promise<boolean> {
      const user = await userOf(input.userId);
      const owned = await ownedConnections(user._id);
      if (owned.length === 0) return false;
      const names = await iModelNames(owned);
      const subject = `Your imodel-sync token expires on ${ts(input.expiresDateTime)}`;
      const text = [
        `Hello ${user.name},`,
        "",
        `your owner token expires on ${ts(input.expiresDateTime)}. After that, the scheduled syncs of the connections you`,
        "own fail until you come back:",
        "",
        connectionLines(owned, names),
        "",
        "Any authenticated request renews it now for 30 days, for example:",
        `  curl -H "authorization: Bearer $YOUR_API_KEY" ${publicApiUrl}/users/me`,
        "",
        "-- imodel-sync",
      ].join("\n");
      const outcome = await sendOnce(`token-expiring:${user._id}:${input.expiresDateTime}`, "token-expiring", {
        to: user.email,
        subject,
        text,
      });
      await emitTokenEvent("token.expiring", user, input.expiresDateTime, owned);
      return outcome === "sent";
    },

    /**
     * The email about a failed scheduled run (docs/product-rules.md "Failure notices"): to the connection's owner, with
     * the failed files, their error codes (with what each means: category, whether the user can fix it, whether a
     * retry may do) and links to the run and the connection's page in the portal. Claimed once per connection and UTC
     * day (`noticeId` = `run-failure:<connectionId>:<day>`), so at most one such email per connection per day.
     * @returns whether an email went out in this call (false: already sent, or the connection has no owner).
     */
    async notifyRunFailure(input: RunFailureNotice): Promise<boolean> {
      const [connection, run] = await Promise.all([
        store.connections.findOne({ _id: input.connectionId }),
        store.runs.findOne({ _id: input.runId }),
      ]);
      if (!connection || !run) throw new Error(`connection ${input.connectionId} or run ${input.runId} has no record`);
      if (!connection.ownerId) return false;
      const owner = await userOf(connection.ownerId);
      const [iModel, tasks] = await Promise.all([
        store.imodels.findOne({ _id: connection.iModelId }),
        readRunTasks(store, run).then((ts) => ts.filter((t) => t.result === "Error")),
      ]);
      const fileLines = tasks.length
        ? tasks.map((t) => {
            const e = t.error;
            const info = e ? errorCodeInfo(e.code) : undefined;
            return [
              `  - ${t.path}: ${e?.code ?? "Error"}${info ? ` (${info.category}; ${info.canUserFix ? "you can fix it" : "not fixable by you"}; ${info.retryable ? "a later run may succeed" : "will fail again unchanged"})` : ""}`,
              ...(e?.message ? [`      ${e.message}`] : []),
            ].join("\n");
          })
        : [`  (no file failed; the run: ${run.error?.code ?? run.result}${run.error ? `: ${run.error.message}` : ""})`];
      const subject = `Scheduled sync of "${connection.displayName}" ended ${run.result}: ${tasks.length} file${tasks.length === 1 ? "" : "s"} failed`;
      const text = [
        `Hello ${owner.name},`,
        "",
        `the scheduled synchronization of "${connection.displayName}" (connection ${connection._id}) into iModel`,
        `"${iModel?.name ?? connection.iModelId}" ended ${run.result}${run.endDateTime ? ` on ${ts(run.endDateTime)}` : ""}. The files that failed:`,
        "",
        ...fileLines,
        "",
        `The run:        ${publicApiUrl}/connections/${connection._id}/runs/${run._id}`,
        `The connection: ${publicApiUrl}/#/connections/${connection._id}`,
        "",
        `You get at most one such email per connection and day. Failed scheduled runs in a row: ${connection.scheduledFailures?.consecutive ?? 1}.`,
        'To stop these emails: PATCH the connection with {"failureNotices": {"enabled": false}}.',
        "",
        "-- imodel-sync",
      ].join("\n");
      const outcome = await sendOnce(input.noticeId, "run-failure", { to: owner.email, subject, text });
      log({ connectionId: connection._id, runId: run._id }).info({ outcome, failed: tasks.length }, "failure notice");
      return outcome === "sent";
    },

    /** Tells the owner that failed scheduled runs paused the connection's schedule, and how to resume it. */
    async notifySchedulePaused(input: RunFailureNotice): Promise<boolean> {
      const connection = await store.connections.findOne({ _id: input.connectionId });
      if (!connection) throw new Error(`connection ${input.connectionId} has no record`);
      if (!connection.ownerId) return false;
      const owner = await userOf(connection.ownerId);
      const consecutive = connection.scheduledFailures?.consecutive ?? 0;
      const subject = `The schedule of "${connection.displayName}" was paused after ${consecutive} failed scheduled runs`;
      const text = [
        `Hello ${owner.name},`,
        "",
        `the last ${consecutive} scheduled synchronizations of "${connection.displayName}" (connection ${connection._id})`,
        `failed, so its schedule (${describeSchedule(connection.schedule)}) is paused:`,
        `  "${connection.schedule?.note ?? "paused"}"`,
        "",
        `The last run:   ${publicApiUrl}/connections/${connection._id}/runs/${input.runId}`,
        `The connection: ${publicApiUrl}/#/connections/${connection._id}`,
        "",
        "Once the files are fixed, resume it:",
        `  curl -X POST -H "authorization: Bearer $YOUR_API_KEY" ${publicApiUrl}/connections/${connection._id}/schedule/resume`,
        "",
        "-- imodel-sync",
      ].join("\n");
      const outcome = await sendOnce(input.noticeId, "schedule-paused", { to: owner.email, subject, text });
      log({ connectionId: connection._id }).info({ outcome, consecutive }, "schedule paused notice");
      return outcome === "sent";
    },

    /** Tells the new owner (`given`) or the previous owner (`taken`) that a connection changed hands. */
    async notifyOwnershipChange(input: OwnershipNotice): Promise<boolean> {
      const [connection, recipient, newOwner, changer] = await Promise.all([
        store.connections.findOne({ _id: input.connectionId }),
        userOf(input.to),
        userOf(input.newOwnerId),
        userOf(input.changedBy),
      ]);
      if (!connection) throw new Error(`connection ${input.connectionId} has no record`);
      const iModel = await store.imodels.findOne({ _id: connection.iModelId });
      const what = `"${connection.displayName}" (connection ${connection._id}) of iModel "${iModel?.name ?? connection.iModelId}"`;
      let subject: string;
      let body: string[];
      if (input.kind === "given") {
        subject = `You are now the owner of connection "${connection.displayName}"`;
        body = [
          `Hello ${recipient.name},`,
          "",
          `${changer._id === recipient._id ? "You" : `${changer.name} <${changer.email}>`} made you the owner of ${what}.`,
          `Its scheduled syncs (${describeSchedule(connection.schedule)}) now run on your behalf, with your token.`,
          "",
          "We recommend a manual sync by you now, so that a fresh owner token is used:",
          `  curl -X POST -H "authorization: Bearer $YOUR_API_KEY" ${publicApiUrl}/connections/${connection._id}/run`,
        ];
      } else {
        subject = `${newOwner.name} took ownership of connection "${connection.displayName}"`;
        body = [
          `Hello ${recipient.name},`,
          "",
          `${newOwner.name} <${newOwner.email}> took ownership of ${what}, which you owned.`,
          `Its scheduled syncs (${describeSchedule(connection.schedule)}) now run on their behalf.`,
        ];
      }
      const text = [...body, "", "-- imodel-sync"].join("\n");
      const outcome = await sendOnce(input.noticeId, "ownership", { to: recipient.email, subject, text });
      log({ connectionId: connection._id }).info(
        { outcome, kind: input.kind, to: recipient.email },
        "ownership notice",
      );
      return outcome === "sent";
    },
  };
}

export type OwnerActivities = ReturnType<typeof createOwnerActivities>;
