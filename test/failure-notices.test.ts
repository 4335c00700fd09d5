/**
 * Failure notices of scheduled runs on the real stack (docs/product-rules.md "Failure notices"): the owner of a
 * connection whose scheduled run fails gets one email (failed files, their error codes, links) per connection and day,
 * and ten failed scheduled runs in a row pause the schedule (Temporal and the record) with a note, and the owner is
 * told. Scheduled runs are fired with the schedule's "trigger" (as test/schedules.test.ts does); mail arrives at the
 * test SMTP server (test/global-setup.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ScheduleOverlapPolicy } from "@temporalio/client";
import { describe, expect, it } from "vitest";
import {
  createUser,
  eventually,
  httpAs,
  makeSource,
  receivedMails,
  SAMPLE,
  triggerSchedule,
  useTemporalClient,
  waitForMails,
  waitForRun,
} from "./helpers";

const HVAC = "ifc4_hvac_air_terminal_duct.ifc";

describe("failure notices of scheduled runs", () => {
  const temporal = useTemporalClient();

  it("settings per connection through PATCH: owner or admin, validated, defaults shown", async () => {
    const owner = await createUser("Notice Settings Owner");
    const member = await createUser("Notice Settings Member");
    const source = makeSource("notice-settings", { [HVAC]: SAMPLE(HVAC) });
    const iModel = (await httpAs(owner.apiKey, "POST", "/imodels", { name: "notice settings" })).body.iModel;
    await httpAs(owner.apiKey, "POST", `/imodels/${iModel.id}/members`, { userId: member.user.id });
    const c = (
      await httpAs(owner.apiKey, "POST", "/connections", {
        iModelId: iModel.id,
        displayName: "notice settings",
        source: { type: "local", path: source },
        sourceFiles: [{ path: HVAC, connectorType: "IFC" }],
      })
    ).body.connection;
    expect(c.failureNotices).toEqual({ enabled: true, pauseAfter: 10, consecutiveFailedScheduledRuns: 0 });
    const patch = (key: string, failureNotices: unknown) =>
      httpAs(key, "PATCH", `/connections/${c.id}`, { failureNotices });
    for (const bad of [
      { pauseAfter: -1 },
      { pauseAfter: 1.5 },
      { pauseAfter: 1001 },
      { enabled: "yes" },
      { other: 1 },
    ]) {
      const r = await patch(owner.apiKey, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.body.error.code).toBe("InvalidRequest");
    }
    const denied = await patch(member.apiKey, { enabled: false });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("NotConnectionOwner");
    const off = await patch(owner.apiKey, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.connection.failureNotices).toMatchObject({ enabled: false, pauseAfter: 10 });
    const never = await patch(owner.apiKey, { pauseAfter: 0 });
    expect(never.body.connection.failureNotices).toMatchObject({ enabled: false, pauseAfter: 0 });
  });

  it("a failing scheduled run emails its owner once a day; ten in a row pause the schedule and the owner is told", async () => {
    const owner = await createUser("Notice Owner");
    const source = makeSource("notices", { [HVAC]: SAMPLE(HVAC), "gone.ifc": SAMPLE(HVAC) });
    const iModel = (await httpAs(owner.apiKey, "POST", "/imodels", { name: "notices" })).body.iModel;
    const c = (
      await httpAs(owner.apiKey, "POST", "/connections", {
        iModelId: iModel.id,
        displayName: "failing nightly",
        source: { type: "local", path: source },
        sourceFiles: [{ path: "gone.ifc", connectorType: "IFC" }],
      })
    ).body.connection;
    const schedule = { type: "daily", time: "03:00", timeZone: "Europe/Berlin" };
    expect((await httpAs(owner.apiKey, "PUT", `/connections/${c.id}/schedule`, schedule)).status).toBe(200);
    fs.rmSync(path.join(source, "gone.ifc"));
    const reapply = async () => {
      await httpAs(owner.apiKey, "PUT", `/connections/${c.id}/schedule`, { ...schedule, time: "03:01" });
      await httpAs(owner.apiKey, "PUT", `/connections/${c.id}/schedule`, schedule);
    };
    const scheduledRuns = async () =>
      (await httpAs(owner.apiKey, "GET", `/connections/${c.id}/runs`)).body.runs.filter(
        (r: any) => r.trigger === "schedule",
      );

    for (let n = 1; n <= 10; n++) {
      await triggerSchedule(temporal(), `schedule/${c.id}`, ScheduleOverlapPolicy.SKIP, reapply);
      const runs = await eventually(`scheduled run ${n}`, async () => {
        const r = await scheduledRuns();
        return r.length >= n ? r : undefined;
      });
      const { run } = await waitForRun(`/connections/${c.id}/runs/${runs[0].id}`);
      expect(run.result, `run ${n}`).toBe("Error");
      // Each error with what it means (README.md "Errors of tasks and runs"): the task's and the run's.
      expect(run.jobs[0].tasks[0].error).toMatchObject({
        code: "FileNotFound",
        category: "SourceFile",
        canUserFix: true,
        retryable: false,
      });
      expect(run.error).toMatchObject({
        code: "AllTasksFailed",
        category: "SourceFile",
        canUserFix: true,
        retryable: false,
      });
      if (n === 1) {
        const [mail] = await waitForMails(owner.user.email, 1);
        expect(mail.subject).toBe('Scheduled sync of "failing nightly" ended Error: 1 file failed');
        expect(mail.text).toContain("gone.ifc: FileNotFound (SourceFile; you can fix it; will fail again unchanged)");
        expect(mail.text).toContain(`/connections/${c.id}/runs/${run.id}`);
        expect(mail.text).toContain(`/#/connections/${c.id}`);
      }
      if (n < 10) {
        // Not paused before the tenth (the streak is counted when the run completes).
        const now = await eventually("the streak counted", async () => {
          const r = (await httpAs(owner.apiKey, "GET", `/connections/${c.id}`)).body.connection;
          return r.failureNotices.consecutiveFailedScheduledRuns === n ? r : undefined;
        });
        expect(now.schedule.paused).toBe(false);
      }
    }
    const paused = await eventually("the schedule paused", async () => {
      const r = (await httpAs(owner.apiKey, "GET", `/connections/${c.id}/schedule`)).body.schedule;
      return r.paused ? r : undefined;
    });
    expect(paused.note).toMatch(/^paused after 10 failed scheduled runs in a row/);
    expect(paused.temporal).toMatchObject({ paused: true });
    expect(paused.temporal.note).toMatch(/^paused after 10 failed scheduled runs/);
    const connection = (await httpAs(owner.apiKey, "GET", `/connections/${c.id}`)).body.connection;
    expect(connection.failureNotices).toMatchObject({ consecutiveFailedScheduledRuns: 10 });

    // One failure email for the day (not ten), and the pause notice.
    const mails = await waitForMails(owner.user.email, 2, 30_000, 3000);
    expect(mails.map((m) => m.subject)).toEqual([
      'Scheduled sync of "failing nightly" ended Error: 1 file failed',
      'The schedule of "failing nightly" was paused after 10 failed scheduled runs',
    ]);
    expect(mails[1].text).toContain(`/connections/${c.id}/schedule/resume`);
    expect(receivedMails().filter((m) => m.to.includes(owner.user.email))).toHaveLength(2);

    // A fixed file and a resumed schedule: the next scheduled run succeeds and the streak starts over.
    fs.copyFileSync(SAMPLE(HVAC), path.join(source, "gone.ifc"));
    expect((await httpAs(owner.apiKey, "POST", `/connections/${c.id}/schedule/resume`)).status).toBe(200);
    await triggerSchedule(temporal(), `schedule/${c.id}`, ScheduleOverlapPolicy.SKIP, reapply);
    const runs = await eventually("the eleventh scheduled run", async () => {
      const r = await scheduledRuns();
      return r.length >= 11 ? r : undefined;
    });
    expect((await waitForRun(`/connections/${c.id}/runs/${runs[0].id}`)).run.result).toBe("Success");
    await eventually("the streak ended", async () => {
      const r = (await httpAs(owner.apiKey, "GET", `/connections/${c.id}`)).body.connection;
      return r.failureNotices.consecutiveFailedScheduledRuns === 0;
    });
  });
});
