/**
 * Unit tests of the rules about changing a connection (domain/connection-rules.ts): pure, no servers. Each rule's
 * refusal (its code, status and message) and the cases it allows. The routes that call them are tested end to end in
 * lifecycle.test.ts, ownership.test.ts, concurrency.test.ts and api-validation.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  assertCompositeModelsChosen,
  assertConnectionActive,
  assertConnectionDeletable,
  assertConnectionOwner,
  assertFileNotAlreadyMapped,
  assertGcsConnectionDeletable,
  assertGcsFileNotUnmapped,
  assertIModelVisible,
  assertMemberRemovable,
  assertNoRunInProgress,
  assertNotLastCompositeModel,
  assertOwnerIsTeamMember,
  assertOwnershipChangeAllowed,
  assertReferenceNotUnmappedAlone,
  assertRunCancellable,
  assertRunRetryable,
  assertTeamManager,
  assertWithinLimits,
  connectionInactiveRefusal,
  definesIModelGcs,
  filesGoingWith,
  filesToRetry,
  gcsFileUnmapRefusal,
  iModelVisible,
  referencesReachable,
  type MappedFile,
} from "../domain/connection-rules";
import { ApiError } from "../domain/errors";
import { LIMITS } from "../domain/limits";
import type {
  ConnectionRecord,
  FileStateRecord,
  IModelRecord,
  ReferenceRecord,
  RunRecord,
  SourceFileRecord,
} from "../domain/model";
import type { TeamMemberRecord, UserRecord } from "../domain/users";

/** The ApiError `fn` throws (fails when it throws nothing or something else). */
function refusal(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error("expected a refusal, got none");
}

const composite = (id: string, path = `${id}.dxf`): SourceFileRecord => ({
  id,
  path,
  connectorType: "DXF",
  role: "CompositeModel",
});

const ref = (id: string, path = `${id}.dxf`, resolved = true): ReferenceRecord => ({
  id,
  path,
  referencedAs: path,
  attachment: "Attach",
  connectorType: "DXF",
  resolved,
});

function connection(over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    _id: "c1",
    iModelId: "m1",
    displayName: "plans",
    source: { type: "local", path: "/src" },
    sourceFiles: [composite("a"), composite("b")],
    definesGcs: false,
    status: "Active",
    createdDateTime: "2024-01-01T00:00:00.000Z",
    ownerId: "u-owner",
    owner: { id: "u-owner", email: "owner@example.com", name: "Owner" },
    ...over,
  };
}

const state = (sourceFileId: string, references: ReferenceRecord[] = [], over: Partial<FileStateRecord> = {}) =>
  ({
    _id: `c1:${sourceFileId}`,
    connectionId: "c1",
    sourceFileId,
    path: `${sourceFileId}.dxf`,
    role: "CompositeModel",
    references,
    ...over,
  }) satisfies FileStateRecord;

const user = (id: string, role: UserRecord["role"] = "user") => ({ _id: id, role, name: id, email: `${id}@x.org` });

/** A member of the team of iModel m1 who has interacted with it (unless `over` says otherwise). */
const member = (userId: string, over: Partial<TeamMemberRecord> = {}): TeamMemberRecord => ({
  _id: `m1:${userId}`,
  iModelId: "m1",
  userId,
  role: "member",
  addedBy: "u-m",
  addedDateTime: "2024-01-01T00:00:00.000Z",
  firstInteractionDateTime: "2024-01-02T00:00:00.000Z",
  ...over,
});

const iModel = (gcs?: IModelRecord["gcs"]): Pick<IModelRecord, "name" | "gcs"> => ({ name: "site", gcs });
const gcsOf = (connectionId: string, sourceFileId: string, path = `${sourceFileId}.dxf`) => ({
  connectionId,
  sourceFileId,
  path,
  dateTime: "2024-01-01T00:00:00.000Z",
});

describe("a deleted connection is neither synchronized nor changed", () => {
  it("allows an Active connection", () => {
    expect(connectionInactiveRefusal(connection())).toBeUndefined();
    expect(() => assertConnectionActive(connection())).not.toThrow();
  });

  it("refuses a Deleted connection and one being deleted with its data (409 ConnectionDeleted)", () => {
    const deleted = refusal(() => assertConnectionActive(connection({ status: "Deleted" })));
    expect(deleted).toMatchObject({ code: "ConnectionDeleted", status: 409 });
    expect(deleted.message).toBe("Connection 'plans' (c1) is deleted.");
    const deleting = refusal(() => assertConnectionActive(connection({ status: "Deleting" })));
    expect(deleting.code).toBe("ConnectionDeleted");
    expect(deleting.message).toMatch(/being deleted with its data/);
    expect(connectionInactiveRefusal(connection({ status: "Deleting" }))).toEqual({
      code: "ConnectionDeleted",
      message: deleting.message,
    });
  });
});

describe("delete, two modes", () => {
  it("deletes an Active connection in either mode", () => {
    expect(assertConnectionDeletable(connection(), "keepData")).toBe("delete");
    expect(assertConnectionDeletable(connection(), "deleteData")).toBe("delete");
  });

  it("resumes the delete job when deleteData is asked again of a connection being deleted with its data", () => {
    expect(assertConnectionDeletable(connection({ status: "Deleting" }), "deleteData")).toBe("resume");
  });

  it("refuses keepData on a connection being deleted with its data, and any delete of a Deleted one", () => {
    expect(refusal(() => assertConnectionDeletable(connection({ status: "Deleting" }), "keepData")).message).toMatch(
      /being deleted with its data/,
    );
    for (const mode of ["keepData", "deleteData"] as const) {
      const r = refusal(() => assertConnectionDeletable(connection({ status: "Deleted" }), mode));
      expect(r).toMatchObject({ code: "ConnectionDeleted", status: 409 });
      expect(r.message).toBe("Connection 'plans' (c1) is already deleted.");
    }
    const kept = connection({
      status: "Deleted",
      deletion: { mode: "keepData", requestedDateTime: "2024-01-02T00:00:00.000Z" },
    });
    expect(refusal(() => assertConnectionDeletable(kept, "deleteData")).message).toMatch(/its data was kept/);
  });

  it("never cancels a delete job; a completed run is not cancelled either", () => {
    const run = (over: Partial<RunRecord>) =>
      ({ _id: "r1", state: "Executing", result: "Undetermined", ...over }) as RunRecord;
    expect(() => assertRunCancellable(run({}))).not.toThrow();
    expect(() => assertRunCancellable(run({ kind: "sync", state: "Queued" }))).not.toThrow();
    const del = refusal(() => assertRunCancellable(run({ kind: "delete" })));
    expect(del).toMatchObject({ code: "RunNotCancellable", status: 409 });
    expect(del.message).toMatch(/never stopped half way/);
    expect(refusal(() => assertRunCancellable(run({ kind: "delete", state: "Completed" }))).code).toBe(
      "RunNotCancellable",
    );
    const done = refusal(() => assertRunCancellable(run({ state: "Completed", result: "Success" })));
    expect(done).toMatchObject({ code: "RunAlreadyCompleted", status: 409 });
    expect(done.message).toMatch(/already completed with result Success/);
    const gone = refusal(() => assertRunCancellable(run({}), { queued: false }));
    expect(gone.code).toBe("RunAlreadyCompleted");
    expect(gone.message).toMatch(/no longer active in its iModel's queue/);
  });
});

describe("only the owner or an administrator changes a connection", () => {
  it("allows the owner and any administrator", () => {
    expect(() => assertConnectionOwner(user("u-owner"), connection(), "rename it")).not.toThrow();
    expect(() => assertConnectionOwner(user("root", "admin"), connection(), "rename it")).not.toThrow();
    expect(() =>
      assertConnectionOwner(user("root", "admin"), connection({ ownerId: undefined, owner: undefined }), "x"),
    ).not.toThrow();
  });

  it("refuses anybody else, also on a connection without owner (403 NotConnectionOwner)", () => {
    const r = refusal(() => assertConnectionOwner(user("u-other"), connection(), "change its schedule"));
    expect(r).toMatchObject({ code: "NotConnectionOwner", status: 403 });
    expect(r.message).toBe(
      "Only the owner of connection 'plans' (owner@example.com) or an administrator may change its schedule: scheduled syncs run on the owner's behalf.",
    );
    const ownerless = connection({ ownerId: undefined, owner: undefined });
    expect(refusal(() => assertConnectionOwner(user("u-other"), ownerless, "delete it")).code).toBe(
      "NotConnectionOwner",
    );
  });
});

describe("ownership changes", () => {
  it("the owner or an administrator gives it to anyone; anyone takes it for themselves", () => {
    expect(() => assertOwnershipChangeAllowed(user("u-owner"), connection(), user("u-new"))).not.toThrow();
    expect(() => assertOwnershipChangeAllowed(user("root", "admin"), connection(), user("u-new"))).not.toThrow();
    expect(() => assertOwnershipChangeAllowed(user("u-new"), connection(), user("u-new"))).not.toThrow();
    expect(() =>
      assertOwnershipChangeAllowed(user("u-new"), connection({ ownerId: undefined }), user("u-new")),
    ).not.toThrow();
  });

  it("refuses someone else giving it away, also when the connection has no owner (403 OwnershipChangeForbidden)", () => {
    const r = refusal(() => assertOwnershipChangeAllowed(user("u-other"), connection(), user("u-new")));
    expect(r).toMatchObject({ code: "OwnershipChangeForbidden", status: 403 });
    expect(r.message).toMatch(/a team member may take it for themselves/);
    expect(
      refusal(() => assertOwnershipChangeAllowed(user("u-other"), connection({ ownerId: undefined }), user("u-new")))
        .code,
    ).toBe("OwnershipChangeForbidden");
  });

  it("goes only to a team member of the iModel (409 NotATeamMember)", () => {
    expect(() => assertOwnerIsTeamMember(connection(), user("u-new"), member("u-new"))).not.toThrow();
    for (const none of [null, undefined]) {
      const r = refusal(() => assertOwnerIsTeamMember(connection(), user("u-new"), none));
      expect(r).toMatchObject({ code: "NotATeamMember", status: 409 });
      expect(r.message).toBe(
        "u-new <u-new@x.org> is not a member of the team of iModel 'm1'; ownership can go only to a team member who has interacted with the iModel.",
      );
      expect(r.details).toEqual([expect.objectContaining({ code: "NotATeamMember", target: "userId" })]);
    }
  });

  it("goes only to a member who has interacted with the iModel since being added (409 TeamMemberNeverInteracted)", () => {
    const r = refusal(() =>
      assertOwnerIsTeamMember(connection(), user("u-new"), member("u-new", { firstInteractionDateTime: undefined })),
    );
    expect(r).toMatchObject({ code: "TeamMemberNeverInteracted", status: 409 });
    expect(r.message).toBe(
      "u-new <u-new@x.org> has not interacted with iModel 'm1' since being added to its team; ownership can go only to a team member who has.",
    );
    expect(r.details).toEqual([expect.objectContaining({ code: "TeamMemberNeverInteracted", target: "userId" })]);
  });

  it("cannot change while a run is in progress (409 RunInProgress)", () => {
    expect(() => assertNoRunInProgress(connection(), undefined)).not.toThrow();
    const r = refusal(() => assertNoRunInProgress(connection(), "r7"));
    expect(r).toMatchObject({ code: "RunInProgress", status: 409 });
    expect(r.details).toEqual([expect.objectContaining({ target: "/connections/c1/runs/r7" })]);
  });
});

describe("iModel teams", () => {
  const site = { _id: "m1", name: "site" };
  const unknown = () => new ApiError("IModelNotFound", "iModel 'm1' does not exist.");

  it("members of any role, interacted or not, and administrators see the iModel", () => {
    expect(iModelVisible(user("u-new"), member("u-new"))).toBe(true);
    expect(iModelVisible(user("u-new"), member("u-new", { role: "manager" }))).toBe(true);
    expect(iModelVisible(user("u-new"), member("u-new", { firstInteractionDateTime: undefined }))).toBe(true);
    expect(iModelVisible(user("root", "admin"), null)).toBe(true);
    expect(() => assertIModelVisible(user("u-new"), member("u-new"), unknown)).not.toThrow();
    expect(() => assertIModelVisible(user("root", "admin"), undefined, unknown)).not.toThrow();
  });

  it("to anyone else it does not exist: the error of an unknown id, word for word (404)", () => {
    expect(iModelVisible(user("u-other"), null)).toBe(false);
    for (const none of [null, undefined]) {
      const r = refusal(() => assertIModelVisible(user("u-other"), none, unknown));
      expect(r.toBody()).toEqual(unknown().toBody());
      expect(r.status).toBe(404);
    }
  });

  it("only a manager or an administrator adds and removes members (403 NotTeamManager)", () => {
    expect(() => assertTeamManager(user("u-m"), site, member("u-m", { role: "manager" }))).not.toThrow();
    expect(() => assertTeamManager(user("root", "admin"), site, null)).not.toThrow();
    for (const m of [member("u-new"), member("u-new", { firstInteractionDateTime: undefined }), null, undefined]) {
      const r = refusal(() => assertTeamManager(user("u-new"), site, m));
      expect(r).toMatchObject({ code: "NotTeamManager", status: 403 });
      expect(r.message).toBe(
        "Only a manager of the team of iModel 'site' (m1) or an administrator may add or remove its members.",
      );
    }
  });

  it("a member who owns connections is not removed until they have another owner (409 MemberOwnsConnections)", () => {
    expect(() => assertMemberRemovable(user("u-owner"), site, [])).not.toThrow();
    const owned = [connection(), connection({ _id: "c2", displayName: "structure" })];
    const r = refusal(() => assertMemberRemovable(user("u-owner"), site, owned));
    expect(r).toMatchObject({ code: "MemberOwnsConnections", status: 409 });
    expect(r.message).toMatch(/^u-owner <u-owner@x.org> owns 2 connection\(s\) of iModel 'site'; give each/);
    expect(r.details).toEqual([
      { code: "MemberOwnsConnections", message: "owns connection 'plans'", target: "/connections/c1" },
      { code: "MemberOwnsConnections", message: "owns connection 'structure'", target: "/connections/c2" },
    ]);
  });
});

describe("reference files go with their composite model", () => {
  const c = connection({ sourceFiles: [composite("a"), composite("b")] });
  const states = [state("a", [ref("x", "xrefs/x.dxf")]), state("b", [ref("x", "xrefs/x.dxf")])];

  it("gives the composite model to unmap", () => {
    expect(assertReferenceNotUnmappedAlone(c, "a", states)).toEqual(composite("a"));
  });

  it("refuses a reference file on its own, naming its composite models (409 ReferenceFileNotUnmappable)", () => {
    const r = refusal(() => assertReferenceNotUnmappedAlone(c, "x", states));
    expect(r).toMatchObject({ code: "ReferenceFileNotUnmappable", status: 409 });
    expect(r.message).toMatch(/^'xrefs\/x\.dxf' is a reference file of composite model 'a\.dxf', 'b\.dxf'; /);
  });

  it("answers 404 SourceFileNotMapped for a file it does not map, or a reference only of unmapped composites", () => {
    const r = refusal(() => assertReferenceNotUnmappedAlone(c, "nope", states));
    expect(r).toMatchObject({ code: "SourceFileNotMapped", status: 404 });
    expect(r.message).toBe("Connection 'plans' (c1) maps no source file 'nope'.");
    const unmappedParent = [state("a", [ref("x")], { unmapped: { mode: "keepData", dateTime: "x" } })];
    expect(refusal(() => assertReferenceNotUnmappedAlone(c, "x", unmappedParent)).code).toBe("SourceFileNotMapped");
  });

  it("the files that go with an unmapped composite: itself and the references no remaining composite names", () => {
    const many = connection({ sourceFiles: [composite("a"), composite("b"), composite("c")] });
    const s = [
      state("a", [ref("shared"), ref("own"), ref("own"), ref("lost", "lost.dxf", false), ref("c")]),
      state("b", [ref("shared")]),
    ];
    expect(filesGoingWith(many, "a", s)).toEqual(["a", "own"]);
    expect(filesGoingWith(many, "b", s)).toEqual(["b"]);
    expect(filesGoingWith(many, "c", s)).toEqual(["c"]);
    // Never parsed: no record, only the composite itself goes.
    expect(filesGoingWith(many, "a", [])).toEqual(["a"]);
  });

  it("nested references go with their composite too, unless a remaining composite reaches them; cycles end", () => {
    const two = connection({ sourceFiles: [composite("a"), composite("b")] });
    // a → r1 → r2 → r3 → a (a cycle back to the composite); b → r3
    const s = [state("a", [ref("r1")]), state("r1", [ref("r2")]), state("r2", [ref("r3")]), state("r3", [ref("a")])];
    expect(referencesReachable(["a"], s)).toEqual(["r1", "r2", "r3"]);
    expect(filesGoingWith(two, "a", s)).toEqual(["a", "r1", "r2", "r3"]);
    const shared = [...s, state("b", [ref("r3")])];
    expect(filesGoingWith(two, "a", shared)).toEqual(["a", "r1", "r2"]);
    // b reaches r1 only through a, which goes: r1 goes with a
    const throughA = [...s, state("b", [ref("a")])];
    expect(filesGoingWith(two, "a", throughA)).toEqual(["a", "r1", "r2", "r3"]);
  });
});

describe("removing every file means deleting the connection", () => {
  it("allows unmapping while another composite model remains", () => {
    expect(() => assertNotLastCompositeModel(connection(), composite("a"))).not.toThrow();
  });

  it("refuses the last composite model (409 LastCompositeModel)", () => {
    const one = connection({ sourceFiles: [composite("a"), { ...composite("r"), role: "ReferenceFile" }] });
    const r = refusal(() => assertNotLastCompositeModel(one, composite("a")));
    expect(r).toMatchObject({ code: "LastCompositeModel", status: 409 });
    expect(r.message).toMatch(/DELETE \/connections\/c1\?mode=keepData\|deleteData/);
  });
});

describe("the GCS-defining connection", () => {
  it("is the connection the iModel names, or one marked definesGcs", () => {
    expect(definesIModelGcs(iModel(gcsOf("c1", "a")), connection())).toBe(true);
    expect(definesIModelGcs(iModel(), connection({ definesGcs: true }))).toBe(true);
    expect(definesIModelGcs(iModel(gcsOf("c2", "a")), connection())).toBe(false);
    expect(definesIModelGcs(iModel(), connection())).toBe(false);
  });

  it("cannot be deleted while the iModel has other connections (409 GcsDefiningConnection)", () => {
    for (const [m, c] of [
      [iModel(gcsOf("c1", "a")), connection()],
      [iModel(), connection({ definesGcs: true })],
    ] as const) {
      const r = refusal(() => assertGcsConnectionDeletable(c, m, 2));
      expect(r).toMatchObject({ code: "GcsDefiningConnection", status: 409 });
      expect(r.message).toBe(
        "Connection 'plans' defines the geographic coordinate system of iModel 'site', which has 2 other connection(s); it can be deleted only once it is the iModel's last connection.",
      );
    }
  });

  it("can be deleted as the iModel's last connection; any other connection can always be", () => {
    expect(() => assertGcsConnectionDeletable(connection(), iModel(gcsOf("c1", "a")), 0)).not.toThrow();
    expect(() => assertGcsConnectionDeletable(connection(), iModel(gcsOf("c2", "a")), 3)).not.toThrow();
    expect(() => assertGcsConnectionDeletable(connection(), iModel(), 3)).not.toThrow();
  });
});

describe("the file that defined the GCS is never unmapped", () => {
  const m = iModel(gcsOf("c1", "x", "xrefs/x.dxf"));

  it("refuses the composite model that defined it (409 GcsDefiningFile)", () => {
    const direct = iModel(gcsOf("c1", "a", "a.dxf"));
    const r = refusal(() => assertGcsFileNotUnmapped(direct, "c1", composite("a"), ["a"]));
    expect(r).toMatchObject({ code: "GcsDefiningFile", status: 409 });
    expect(r.message).toBe(
      "'a.dxf' defined the geographic coordinate system of iModel 'site' and cannot be unmapped once synchronized.",
    );
  });

  it("refuses a composite model whose reference file going with it defined it", () => {
    const r = refusal(() => assertGcsFileNotUnmapped(m, "c1", composite("a"), ["a", "x"]));
    expect(r.code).toBe("GcsDefiningFile");
    expect(r.message).toMatch(/^'a\.dxf' \(through its reference file 'xrefs\/x\.dxf'\) defined/);
  });

  it("allows other files, a GCS reference that stays (another composite names it), and other connections' files", () => {
    expect(() => assertGcsFileNotUnmapped(m, "c1", composite("a"), ["a"])).not.toThrow();
    expect(() => assertGcsFileNotUnmapped(m, "c2", composite("x"), ["x"])).not.toThrow();
    expect(() => assertGcsFileNotUnmapped(iModel(), "c1", composite("a"), ["a"])).not.toThrow();
  });

  it("gives a delete job the refusal to record as its task's error instead of throwing", () => {
    expect(gcsFileUnmapRefusal(m, "c1", { id: "x", path: "xrefs/x.dxf" }, ["x"])).toEqual({
      code: "GcsDefiningFile",
      message:
        "'xrefs/x.dxf' defined the geographic coordinate system of iModel 'site' and cannot be unmapped once synchronized.",
      target: "xrefs/x.dxf",
    });
    expect(gcsFileUnmapRefusal(m, "c1", { id: "a", path: "a.dxf" }, ["a"])).toBeUndefined();
    expect(gcsFileUnmapRefusal(m, "c2", { id: "x", path: "xrefs/x.dxf" }, ["x"])).toBeUndefined();
  });
});

describe("limits", () => {
  const withComposites = (n: number) => ({ sourceFiles: Array.from({ length: n }, (_, i) => composite(`f${i}`)) });

  it("allows up to 100 connections and 250 composite models per iModel", () => {
    const connections = Array.from({ length: LIMITS.connectionsPerIModel - 1 }, () => withComposites(2));
    expect(() => assertWithinLimits("m1", connections, { connections: 1, compositeModels: 52 })).not.toThrow();
    expect(() => assertWithinLimits("m1", [withComposites(249)], { connections: 0, compositeModels: 1 })).not.toThrow();
    // Adding files to a connection counts no new connection, even at 100 connections.
    const full = Array.from({ length: LIMITS.connectionsPerIModel }, () => withComposites(1));
    expect(() => assertWithinLimits("m1", full, { connections: 0, compositeModels: 1 })).not.toThrow();
  });

  it("refuses the 101st connection (409 MaxConnectionsPerIModelReached)", () => {
    const full = Array.from({ length: LIMITS.connectionsPerIModel }, () => withComposites(1));
    const r = refusal(() => assertWithinLimits("m1", full, { connections: 1, compositeModels: 1 }));
    expect(r).toMatchObject({ code: "MaxConnectionsPerIModelReached", status: 409 });
    expect(r.message).toBe("iModel 'm1' already has 100 connections, the most allowed.");
  });

  it("refuses the 251st composite model, counting only composite models (409 MaxCompositeModelsPerIModelReached)", () => {
    const withRefs = {
      sourceFiles: [...withComposites(200).sourceFiles, { ...composite("r"), role: "ReferenceFile" as const }],
    };
    expect(() =>
      assertWithinLimits("m1", [withRefs, withComposites(49)], { connections: 0, compositeModels: 1 }),
    ).not.toThrow();
    const r = refusal(() =>
      assertWithinLimits("m1", [withRefs, withComposites(49)], { connections: 0, compositeModels: 2 }),
    );
    expect(r).toMatchObject({ code: "MaxCompositeModelsPerIModelReached", status: 409 });
    expect(r.message).toBe(
      "iModel 'm1' would have 251 composite models; at most 250 are allowed across its connections.",
    );
  });
});

describe("a file is mapped by at most one connection of an iModel", () => {
  const other = connection({ _id: "c2", displayName: "other" });
  const mine = connection();
  const mapped = (over: Partial<MappedFile>): MappedFile => ({
    connection: other,
    path: "/src/a.dxf",
    real: "/src/a.dxf",
    asReference: false,
    ...over,
  });
  const adding = (...paths: string[]) =>
    new Map(paths.map((p, i) => [p, { file: { path: `new${i}.dxf` }, target: `sourceFiles.${i}.path` }]));

  it("allows files nobody maps", () => {
    expect(() => assertFileNotAlreadyMapped(adding("/src/n.dxf"), [mapped({})])).not.toThrow();
    expect(() => assertFileNotAlreadyMapped(adding("/src/n.dxf"), [])).not.toThrow();
  });

  it("refuses a file another connection maps, by path or by real path (409 SourceFileAlreadyMapped)", () => {
    const r = refusal(() => assertFileNotAlreadyMapped(adding("/src/n.dxf", "/src/a.dxf"), [mapped({})], "c1"));
    expect(r).toMatchObject({ code: "SourceFileAlreadyMapped", status: 409 });
    expect(r.message).toBe("Source file 'new1.dxf' is already mapped by connection 'other' (c2) of this iModel.");
    expect(r.details).toEqual([
      { code: "SourceFileAlreadyMapped", message: "mapped by connection c2", target: "sourceFiles.1.path" },
    ]);
    const alias = mapped({ path: "/src/link.dxf", real: "/real/a.dxf" });
    expect(refusal(() => assertFileNotAlreadyMapped(adding("/real/a.dxf"), [alias])).code).toBe(
      "SourceFileAlreadyMapped",
    );
  });

  it("refuses a reference file another connection synchronizes, and a file the connection itself maps", () => {
    expect(
      refusal(() => assertFileNotAlreadyMapped(adding("/src/a.dxf"), [mapped({ asReference: true })])).message,
    ).toMatch(/ as a reference file\.$/);
    expect(
      refusal(() => assertFileNotAlreadyMapped(adding("/src/a.dxf"), [mapped({ connection: mine })], "c1")).message,
    ).toBe("Source file 'new0.dxf' is already mapped by this connection.");
  });
});

describe("run control: retrying the failed files of a run", () => {
  const run = (over: Partial<RunRecord> = {}) =>
    ({ _id: "r1", state: "Completed", result: "PartialSuccess", ...over }) as Pick<
      RunRecord,
      "_id" | "kind" | "state" | "result"
    >;
  const task = (sourceFileId: string, result: RunRecord["result"], index = 0) => ({
    sourceFileId,
    path: `${sourceFileId}.dxf`,
    result,
    index,
  });

  it("gives the failed tasks of a completed run, in run order", () => {
    const failed = assertRunRetryable(run(), [task("b", "Error", 2), task("a", "Success", 0), task("c", "Error", 1)]);
    expect(failed.map((t) => t.sourceFileId)).toEqual(["c", "b"]);
  });

  it("refuses a run still queued or executing (409 RunStillActive)", () => {
    for (const state of ["Queued", "Executing", "Finalizing"] as const) {
      const e = refusal(() => assertRunRetryable(run({ state, result: "Undetermined" }), [task("a", "Error")]));
      expect([e.code, e.status]).toEqual(["RunStillActive", 409]);
      expect(e.message).toContain(state);
    }
  });

  it("refuses a run without a failed task (409 NoFailedTasks), and a delete job (409 RunNotRetryable)", () => {
    const none = refusal(() =>
      assertRunRetryable(run({ result: "Success" }), [task("a", "Success"), task("b", "Skipped")]),
    );
    expect([none.code, none.status]).toEqual(["NoFailedTasks", 409]);
    const job = refusal(() => assertRunRetryable(run({ kind: "delete", result: "Error" }), [task("a", "Error")]));
    expect([job.code, job.status]).toEqual(["RunNotRetryable", 409]);
  });

  it("retries the failed files still mapped: composite models and the reference files mapped ones reach", () => {
    const c = connection({ sourceFiles: [composite("a"), composite("b")] });
    const states = [state("a", [ref("x")]), state("x", [ref("y")]), state("b")];
    expect(filesToRetry(c, [task("b", "Error"), task("y", "Error"), task("a", "Error")], states)).toEqual([
      "b",
      "y",
      "a",
    ]);
    // A composite unmapped since, and a reference only it named, are not retried.
    const later = connection({ sourceFiles: [composite("b")] });
    expect(filesToRetry(later, [task("a", "Error"), task("x", "Error"), task("b", "Error")], states)).toEqual(["b"]);
    const e = refusal(() => filesToRetry(later, [task("a", "Error"), task("x", "Error")], states));
    expect([e.code, e.status]).toEqual(["NoFailedTasks", 409]);
    expect(e.message).toContain("'a.dxf'");
  });
});

describe("run control: a run limited to chosen composite models", () => {
  const c = connection({ sourceFiles: [composite("a"), composite("b")] });
  const states = [state("a", [ref("x", "xref.dxf")])];

  it("takes mapped composite models, without repeats, in the order given", () => {
    expect(assertCompositeModelsChosen(c, ["b", "a", "b"], states)).toEqual(["b", "a"]);
  });

  it("refuses a reference file (400, detail NotACompositeModel) before unknown ids", () => {
    const e = refusal(() => assertCompositeModelsChosen(c, ["nope", "x"], states));
    expect([e.code, e.status]).toEqual(["InvalidRequest", 400]);
    expect(e.details).toEqual([
      { code: "NotACompositeModel", message: expect.stringContaining("'xref.dxf'"), target: "sourceFileIds.1" },
    ]);
  });

  it("refuses ids the connection does not map (404 SourceFileNotMapped, one detail each)", () => {
    const e = refusal(() =>
      assertCompositeModelsChosen(
        c,
        ["a", "nope", "gone"],
        [state("gone", [], { unmapped: { mode: "keepData", dateTime: "x" } })],
      ),
    );
    expect([e.code, e.status]).toEqual(["SourceFileNotMapped", 404]);
    expect(e.details!.map((d) => [d.code, d.target])).toEqual([
      ["SourceFileNotMapped", "sourceFileIds.1"],
      ["SourceFileNotMapped", "sourceFileIds.2"],
    ]);
  });
});
