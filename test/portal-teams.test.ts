/**
 * The portal in a real browser (as test/portal.test.ts), for iModel teams and the service's health (README "Portal",
 * "Authentication and users", "Ownership"): a manager adds members by user id, changes a role, sees who has interacted;
 * the owner dialog offers only members who have interacted and says why the others are not offered; the refusal to
 * remove a member who owns a connection shows that connection as the API words it; iModels and connections outside a
 * user's teams are absent, and their addresses give a "not found or not shared with you" page; the administrator sees
 * everything, adds a member by picking the user, and creates a user whose key is shown once; the health indicator
 * shows ok, degraded (low disk space, with the figures) and unavailable. axe-core on every page and dialog, and a
 * screenshot of each at 1280x800.
 */
import * as path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { portalDriver, SCREENSHOT_DIR, startChromium, type StartedBrowser } from "./browser";
import {
  createUser,
  eventually,
  http,
  httpAs,
  killService,
  makeSource,
  restartService,
  SAMPLE,
  stack,
} from "./helpers";

const TAG = Date.now().toString(36).slice(-5);
const TEAM_CAMPUS = `Team campus ${TAG}`;

describe("portal in a browser: iModel teams and the service's health", () => {
  const started = Date.now();
  let chromium: StartedBrowser;
  let page: Page;
  let mia: { user: any; apiKey: string };
  let nik: { user: any; apiKey: string };
  let oli: { user: any; apiKey: string };
  let pat: { user: any; apiKey: string };
  let iModelId: string;
  let connectionId: string;
  const { consoleErrors, url, newPage, check, signIn, reopen, heading, dialog } = portalDriver(
    () => chromium,
    () => stack().apiUrl,
  );
  const memberRow = (p: Page, userId: string) => p.locator(`[data-testid="member"][data-user="${userId}"]`);

  beforeAll(async () => {
    console.log(`portal screenshots: ${SCREENSHOT_DIR}`);
    chromium = await startChromium();
    [mia, nik, oli, pat] = await Promise.all([
      createUser("Mia Manager"),
      createUser("Nik Member"),
      createUser("Oli Onlooker"),
      createUser("Pat Outsider"),
    ]);
    // Mia creates the iModel (so she manages its team) and a connection (so she owns it).
    const m = await httpAs(mia.apiKey, "POST", "/imodels", { name: TEAM_CAMPUS });
    expect(m.status).toBe(201);
    iModelId = m.body.iModel.id;
    const source = makeSource("portal-team", { "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc") });
    const c = await httpAs(mia.apiKey, "POST", "/connections", {
      iModelId,
      displayName: "Team HVAC",
      source: { type: "local", path: source },
      sourceFiles: [{ path: "hvac.ifc", connectorType: "IFC" }],
    });
    expect(c.status).toBe(201);
    connectionId = c.body.connection.id;
    page = await newPage();
  });

  afterAll(async () => {
    await chromium?.close();
    console.log(
      `portal browser tests (teams, health): ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOT_DIR}`,
    );
  });

  it("a manager adds members by user id, changes a role, and sees who has interacted", async () => {
    await page.goto(url());
    await signIn(page, mia.apiKey);
    await page.getByRole("link", { name: TEAM_CAMPUS }).click();
    await heading(page, TEAM_CAMPUS).waitFor();
    await page.getByRole("button", { name: "Team", exact: true }).click();
    await heading(page, `Team of ${TEAM_CAMPUS}`).waitFor();
    expect(await page.getByTestId("your-role").textContent()).toContain("You are a manager of this team");

    // Mia is not an administrator: she types the user id that the person reads on their Account page.
    for (const [who, name] of [
      [nik, "Nik Member"],
      [oli, "Oli Onlooker"],
    ] as const) {
      await page.getByLabel("User id").fill(who.user.id);
      await page.getByRole("button", { name: "Add to the team" }).click();
      await page.getByText(`${name} was added as a member.`).waitFor();
      await memberRow(page, who.user.id).waitFor();
    }
    // A user id that does not exist: the API's words next to the field.
    await page.getByLabel("User id").fill("no-such-user");
    await page.getByRole("button", { name: "Add to the team" }).click();
    await page.getByText(/User 'no-such-user' does not exist\. \(UserNotFound\)/).waitFor();
    await page.getByLabel("User id").fill("");

    // Nik uses the iModel; Oli does not.
    expect((await httpAs(nik.apiKey, "GET", `/imodels/${iModelId}`)).status).toBe(200);
    await page.reload();
    await signIn(page, mia.apiKey);
    await heading(page, `Team of ${TEAM_CAMPUS}`).waitFor();
    const nikRow = memberRow(page, nik.user.id);
    const oliRow = memberRow(page, oli.user.id);
    await nikRow.getByText("no connection").waitFor();
    expect(await oliRow.textContent()).toContain("not yet");
    expect(await oliRow.textContent()).toContain("cannot own connections until they use the iModel");
    expect(await nikRow.textContent()).not.toContain("not yet");
    expect(await nikRow.textContent()).toContain("by Mia Manager (you)");
    expect(await memberRow(page, mia.user.id).textContent()).toContain("Team HVAC");

    // A role changed in place.
    await page.getByRole("combobox", { name: "Role of Oli Onlooker" }).selectOption("manager");
    await page.getByText("Oli Onlooker is now a manager of the team.").waitFor();
    const members = (await http("GET", `/imodels/${iModelId}/members`)).body.members;
    expect(members.find((m: any) => m.userId === oli.user.id)).toMatchObject({
      role: "manager",
      addedBy: mia.user.id,
      firstInteractionDateTime: null,
    });
    await page.getByRole("combobox", { name: "Role of Oli Onlooker" }).selectOption("member");
    await page.getByText("Oli Onlooker is now a member of the team.").waitFor();
    await check(page, "20-team");
  });

  it("the owner dialog offers only members who have interacted, and says why the others are not offered", async () => {
    await reopen(page, `#/connections/${connectionId}`, mia.apiKey);
    await heading(page, "Team HVAC").waitFor();
    await page.getByRole("button", { name: "Owner", exact: true }).click();
    const owner = dialog(page);
    // The dialog reads the team first: wait for the choice (reading it at once sees no options on a busy machine).
    await owner.getByLabel("New owner").waitFor();
    await owner.getByTestId("owner-not-offered").waitFor();
    const options = await owner.getByLabel("New owner").locator("option").allTextContents();
    expect(options).toEqual([expect.stringMatching(/^Nik Member \(/)]);
    const notOffered = owner.getByTestId("owner-not-offered");
    expect(await notOffered.textContent()).toContain("they have not used this iModel since they were added");
    expect(await notOffered.textContent()).toContain("Oli Onlooker");
    await check(page, "21-owner-dialog-team");
    await owner.getByRole("button", { name: "Change owner" }).click();
    await owner.getByText("Nik Member should run a manual sync now").waitFor();
    await owner.getByRole("button", { name: "Close" }).last().click();
    await page.getByText("Nik Member (").first().waitFor();
  });

  it("refuses to remove a member who owns a connection, with that connection as the API words it", async () => {
    await reopen(page, `#/imodels/${iModelId}/team`, mia.apiKey);
    await heading(page, `Team of ${TEAM_CAMPUS}`).waitFor();
    await memberRow(page, nik.user.id).getByRole("link", { name: "Team HVAC" }).waitFor();
    await page.getByRole("button", { name: "Remove Nik Member" }).click();
    await dialog(page).getByRole("button", { name: "Remove", exact: true }).click();
    const refusal = dialog(page).getByTestId("member-owns-connections");
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain("(MemberOwnsConnections)");
    expect(await refusal.textContent()).toMatch(/Nik Member <.*> owns 1 connection\(s\) of iModel/);
    const link = refusal.getByRole("link", { name: "owns connection 'Team HVAC'" });
    expect(await link.getAttribute("href")).toBe(`#/connections/${connectionId}`);
    await check(page, "22-remove-member-refused");
    await dialog(page).getByRole("button", { name: "Cancel" }).click();

    // Oli owns nothing: removed.
    await page.getByRole("button", { name: "Remove Oli Onlooker" }).click();
    await dialog(page).getByRole("button", { name: "Remove", exact: true }).click();
    await page.getByText("Oli Onlooker was removed from the team.").waitFor();
    await memberRow(page, oli.user.id).waitFor({ state: "detached" });
  });

  it("hides what is not shared: absent from the lists, and its address says 'not found or not shared with you'", async () => {
    const p = await newPage();
    await p.goto(url());
    await signIn(p, pat.apiKey);
    await heading(p, "iModels").waitFor();
    expect(await p.getByRole("link", { name: TEAM_CAMPUS }).count()).toBe(0);
    await p.goto(url(`#/imodels/${iModelId}`));
    await heading(p, "iModel not found or not shared with you").waitFor();
    expect(await p.getByTestId("not-shared").textContent()).toContain(
      "Either it does not exist (it may have been deleted, or the address is mistyped), or it is not shared with you",
    );
    await p.goto(url(`#/imodels/${iModelId}/team`));
    await heading(p, "iModel not found or not shared with you").waitFor();
    await p.goto(url(`#/connections/${connectionId}`));
    await heading(p, "Connection not found or not shared with you").waitFor();
    await check(p, "23-not-shared");
    // The page says where the user id is that a manager needs; the account page shows it.
    await p.getByRole("link", { name: "Account", exact: true }).click();
    await heading(p, "Your account").waitFor();
    expect(await p.getByTestId("user-id").textContent()).toContain(pat.user.id);
    await check(p, "24-account");
    await p.close();
  });

  it("the administrator sees everything, adds a member by picking the user, and creates a user whose key is shown once", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.goto(url());
    await signIn(page, stack().adminApiKey);
    await page.getByRole("link", { name: TEAM_CAMPUS }).click();
    await heading(page, TEAM_CAMPUS).waitFor();
    await page.getByRole("link", { name: "Team HVAC" }).waitFor();
    await page.getByRole("button", { name: "Team", exact: true }).click();
    await heading(page, `Team of ${TEAM_CAMPUS}`).waitFor();
    expect(await page.getByTestId("your-role").textContent()).toContain("You are an administrator, not in this team");
    const user = page.getByRole("combobox", { name: "User" });
    await user.fill("Pat Outs");
    await page.getByRole("option", { name: /^Pat Outsider \(/ }).click();
    await page.getByRole("button", { name: "Add to the team" }).click();
    await page.getByText("Pat Outsider was added as a member.").waitFor();
    await memberRow(page, pat.user.id).waitFor();
    await check(page, "25-team-admin");
    expect((await httpAs(pat.apiKey, "GET", `/imodels/${iModelId}`)).status).toBe(200);

    await page.getByRole("link", { name: "Users", exact: true }).click();
    await heading(page, "Users").waitFor();
    await page.getByRole("button", { name: "New user" }).click();
    await dialog(page).getByLabel("Email").fill(`quinn-${TAG}@tests.example`);
    await dialog(page).getByLabel("Name").fill("Quinn New");
    await dialog(page).getByRole("button", { name: "Create user" }).click();
    const shown = dialog(page).getByTestId("new-user-key");
    await shown.waitFor();
    const key = (await shown.locator("code").first().textContent())!;
    expect(key).toMatch(/^isk_/);
    await check(page, "26-users-new-key");
    await dialog(page).getByRole("button", { name: "Done" }).click();
    await page.getByRole("cell", { name: `quinn-${TAG}@tests.example` }).waitFor();
    expect((await httpAs(key, "GET", "/users/me")).body.user.name).toBe("Quinn New");
  });

  it("shows the service's health: ok, degraded with the low disk space figures, unavailable, ok again", async () => {
    const health = page.getByTestId("health");
    await eventually("the indicator to say ok", async () => (await health.getAttribute("data-status")) === "ok");
    await health.click();
    const details = page.getByTestId("health-details");
    await details.getByText("The database, Temporal and a worker answer").waitFor();
    await check(page, "27-health-ok");

    // Low disk space: an API whose threshold is more than any disk has (the launcher keeps the setting; set back below).
    const env = stack().env;
    try {
      await restartService("api", { DISK_FREE_MIN_MB: "1000000000" });
      await details.getByRole("button", { name: "Check now" }).click();
      await details.getByText("Low disk space").waitFor();
      expect(await health.getAttribute("data-status")).toBe("degraded");
      const text = (await details.textContent()) ?? "";
      expect(text).toMatch(/MiB free of [\d,]+ MiB \(less than 1,000,000,000 MiB\)/);
      expect(text).toContain(path.basename(env.DATA_DIR));
      await check(page, "28-health-degraded");
    } finally {
      await restartService("api", { DISK_FREE_MIN_MB: env.DISK_FREE_MIN_MB ?? "500" });
    }

    // Temporal down: unavailable, with what does not answer.
    try {
      killService("temporal");
      await details.getByRole("button", { name: "Check now" }).click();
      await details.getByText("The service cannot synchronize now").waitFor({ timeout: 15_000 });
      expect(await health.getAttribute("data-status")).toBe("unavailable");
      expect(await details.textContent()).toMatch(/Temporal: /);
      await check(page, "29-health-unavailable");
    } finally {
      await restartService("temporal");
    }
    await eventually(
      "the indicator to say ok again",
      async () => {
        await details.getByRole("button", { name: "Check now" }).click();
        await page.waitForTimeout(500);
        return (await health.getAttribute("data-status")) === "ok";
      },
      120_000,
      2_000,
    );
  });

  it("left no console error on any page", () => {
    expect(consoleErrors.join("\n")).toBe("");
  });
});
