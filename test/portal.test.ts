/**
 * The portal (web/) in a real browser: Debian's Chromium driven by playwright-core against the test stack's API,
 * which serves the built portal at `/`. One person's day, in order: sign in (the key kept in memory only), create an
 * iModel and a connection from the folder browser (a file another connection maps is refused next to that file),
 * synchronize and watch the progress bar reach the end, open a task's warnings, rename, schedule, add and unmap
 * composite models with each mode, synchronize several connections at once, see the owner change refused during a
 * run and then done, see the GCS refusal, delete with each mode and follow the delete job; the token banner of a user
 * whose owner token expired (scaled durations, as in test/owner-token.test.ts); the main flow by keyboard alone; a
 * narrow window. Every page gets an axe-core check (no serious or critical violation) and a screenshot at 1280x800,
 * written to test-output/screenshots (printed at the start).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownerTokenWorkflow, ownerTokenWorkflowId } from "../workflows/owner-token";
import { portalDriver, SCREENSHOT_DIR, startChromium, type StartedBrowser } from "./browser";
import {
  createUser,
  eventually,
  FIXTURE,
  http,
  httpAs,
  makeSource,
  SAMPLE,
  stack,
  useTemporalClient,
  waitForRun,
} from "./helpers";

const XREF = (f: string) => FIXTURE(`dxf-xref/${f}`);
/** iModel names of this run (the stack may hold others from earlier runs). */
const TAG = Date.now().toString(36).slice(-5);
const CAMPUS = `Portal campus ${TAG}`;
const TOKEN_CAMPUS = `Token campus ${TAG}`;

describe("portal in a browser", () => {
  const temporal = useTemporalClient();
  const started = Date.now();
  let chromium: StartedBrowser;
  let page: Page;
  let ada: { user: any; apiKey: string };
  let bob: { user: any; apiKey: string };
  let source: string;
  let sourceName: string;
  let iModelId: string;
  const ids: Record<string, string> = {};
  const { consoleErrors, url, newPage, check, reopen, signIn, heading, dialog, progress, watchRun } = portalDriver(
    () => chromium,
    () => stack().apiUrl,
  );

  beforeAll(async () => {
    console.log(`portal screenshots: ${SCREENSHOT_DIR}`);
    chromium = await startChromium();
    ada = await createUser("Ada Portal");
    bob = await createUser("Bob Portal");
    source = makeSource("portal", {
      "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "hvac-copy.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
      "utm.ifc": SAMPLE("ifc4x3_georef_mapconversion_utm.ifc"),
      "structure.ifc": SAMPLE("ifc2x3_structural_revit_example_rev1.ifc"),
      "architecture.ifc": SAMPLE("ifc4_architecture_revit_testmodel.ifc"),
      "xref_host_attached_r2000.dxf": XREF("xref_host_attached_r2000.dxf"),
      "xref_host_overlay_r2018.dxf": XREF("xref_host_overlay_r2018.dxf"),
      "xref_target_grid_r2000.dxf": XREF("xref_target_grid_r2000.dxf"),
      "notes/readme.txt": SAMPLE("ifc4_hvac_air_terminal_duct.ifc"),
    });
    sourceName = path.basename(source);
    page = await newPage();
  });

  afterAll(async () => {
    await chromium?.close();
    console.log(
      `portal browser tests: ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOT_DIR}`,
    );
  });

  it("signs in with the key held in memory only", async () => {
    await page.goto(url());
    await heading(page, "Sign in to imodel-sync").waitFor();
    await check(page, "01-sign-in");
    await page.getByLabel("API key").fill("isk_not-a-valid-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "This API key is not valid." }).waitFor();
    await signIn(page, ada.apiKey);
    await heading(page, "iModels").waitFor();
    // Nowhere but in memory: no URL, no storage, no cookie.
    // (Callbacks of page.evaluate run in the page: its globals are reached through globalThis.)
    const kept = await page.evaluate(() => {
      const w = globalThis as any;
      return {
        href: w.location.href,
        local: w.localStorage.length,
        session: w.sessionStorage.length,
        cookie: w.document.cookie,
      };
    });
    expect(kept).toEqual({ href: url(), local: 0, session: 0, cookie: "" });
    expect(await chromium.context.cookies()).toEqual([]);
    await check(page, "02-imodels");
  });

  it("creates an iModel and a connection from the folder browser; a file mapped by another connection is refused next to it", async () => {
    await page.getByRole("button", { name: "New iModel" }).click();
    await dialog(page).getByLabel("Name").fill(CAMPUS);
    await dialog(page).getByRole("button", { name: "Create" }).click();
    await heading(page, CAMPUS).waitFor();
    iModelId = decodeURIComponent(new URL(page.url()).hash.split("/")[2]);
    // The manager adds Bob to the team; Bob then uses the iModel once, so he may own its connections.
    expect((await http("POST", `/imodels/${iModelId}/members`, { userId: bob.user.id, role: "member" })).status).toBe(
      201,
    );
    expect((await httpAs(bob.apiKey, "GET", `/imodels/${iModelId}`)).status).toBe(200);

    await page.getByRole("button", { name: "New connection" }).click();
    await heading(page, `New connection in ${CAMPUS}`).waitFor();
    await page.getByRole("button", { name: `Open folder ${stack().sourcesDir}` }).click();
    await page.getByRole("button", { name: `Open folder ${sourceName}` }).click();
    await page.getByText(`Folder ${source}`).waitFor();
    // A file no connector reads cannot be picked; a subfolder opens.
    await page.getByRole("button", { name: "Open folder notes" }).click();
    expect(await page.getByRole("checkbox", { name: "readme.txt" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Up one folder" }).click();
    for (const f of ["hvac.ifc", "xref_host_attached_r2000.dxf", "xref_host_overlay_r2018.dxf"])
      await page.getByRole("checkbox", { name: f }).check();
    const dxfRow = page
      .getByRole("row")
      .filter({ has: page.getByRole("checkbox", { name: "xref_host_overlay_r2018.dxf" }) });
    expect(await dxfRow.getByRole("cell").nth(1).textContent()).toBe("DXF");
    await page.getByLabel("Display name").fill("Plans");
    await check(page, "04-new-connection");
    await page.getByRole("button", { name: "Create connection" }).click();
    await heading(page, "Plans").waitFor();
    ids.plans = decodeURIComponent(new URL(page.url()).hash.split("/")[2]);

    // A second connection may not map hvac.ifc again: the API's words appear next to that file.
    await reopen(page, `#/imodels/${iModelId}/new-connection`, ada.apiKey);
    await heading(page, `New connection in ${CAMPUS}`).waitFor();
    await page.getByRole("button", { name: `Open folder ${stack().sourcesDir}` }).click();
    await page.getByRole("button", { name: `Open folder ${sourceName}` }).click();
    for (const f of ["hvac.ifc", "utm.ifc", "structure.ifc", "architecture.ifc"])
      await page.getByRole("checkbox", { name: f }).check();
    await page.getByLabel("Display name").fill("Site");
    await page.getByRole("button", { name: "Create connection" }).click();
    const hvacRow = page
      .getByRole("row")
      .filter({ has: page.getByRole("checkbox", { name: "hvac.ifc", exact: true }) });
    await hvacRow.getByText("SourceFileAlreadyMapped").waitFor();
    expect(await hvacRow.textContent()).toContain("is already mapped");
    await check(page, "05-new-connection-refused");
    await page.getByRole("checkbox", { name: "hvac.ifc", exact: true }).uncheck();
    await page.getByRole("button", { name: "Create connection" }).click();
    await heading(page, "Site").waitFor();
    ids.site = decodeURIComponent(new URL(page.url()).hash.split("/")[2]);
    const site = (await http("GET", `/connections/${ids.site}`)).body.connection;
    expect(site.sourceFiles.map((f: any) => f.path).sort()).toEqual(["architecture.ifc", "structure.ifc", "utm.ifc"]);
    expect(site.owner.id).toBe(ada.user.id);
  });

  it("synchronizes and shows the progress bar live until the end; opens a task's warnings; links the run to the Temporal UI", async () => {
    await reopen(page, `#/connections/${ids.plans}`, ada.apiKey);
    await heading(page, "Plans").waitFor();
    await page.getByRole("button", { name: "Synchronize", exact: true }).click();
    const seen = await watchRun(page);
    const end = seen[seen.length - 1];
    // Seen moving without a reload: at least one state before Completed, then every file done.
    expect(seen.length, JSON.stringify(seen)).toBeGreaterThan(1);
    expect(seen[0].state).not.toBe("Completed");
    expect(end).toMatchObject({ state: "Completed", result: "Success", done: 4, total: 4 });
    expect(end.text).toMatch(/4 of 4 files · [\d,]+ elements written/);
    // The reference file under its composite model, in the mapping and in the run.
    const grid = page.getByTestId("reference").filter({ hasText: "xref_target_grid_r2000.dxf" });
    await grid.waitFor();
    await page
      .getByText("Reference files go with their composite model: they cannot be unmapped on their own")
      .first()
      .waitFor();
    const gridTask = page.locator('[data-testid="task"][data-path="xref_target_grid_r2000.dxf"]');
    expect(await gridTask.textContent()).toContain("reference file of xref_host_attached_r2000.dxf");
    // The workflow in the Temporal UI.
    const config = (await http("GET", "/config")).body.temporalUi;
    const link = page.getByRole("link", { name: /^sync\/.* in the Temporal UI/ });
    expect(await link.getAttribute("href")).toMatch(
      new RegExp(`^${config.url}/namespaces/default/workflows/sync%2F${ids.plans}%2F`),
    );
    await check(page, "06-connection-synchronized");

    await page.getByRole("button", { name: /warnings? of xref_host_overlay_r2018\.dxf/ }).click();
    const warnings = dialog(page);
    await warnings.getByText("UnresolvedReference").first().waitFor();
    expect(await warnings.textContent()).toContain("missing_structure.dwg");
    await check(page, "07-task-warnings");
    await warnings.getByRole("button", { name: "Close", exact: true }).last().click();
    await warnings.waitFor({ state: "detached" });
  });

  it("renames and schedules the connection; the next run is shown", async () => {
    await reopen(page, `#/connections/${ids.plans}`, ada.apiKey);
    await heading(page, "Plans").waitFor();
    await page.getByRole("button", { name: "Rename", exact: true }).click();
    await dialog(page).getByLabel("Display name").fill("Plans (north)");
    await dialog(page).getByRole("button", { name: "Rename", exact: true }).click();
    await heading(page, "Plans (north)").waitFor();

    await page.getByRole("button", { name: "Schedule", exact: true }).click();
    await dialog(page).getByLabel("Synchronize").selectOption("every4Hours");
    await dialog(page).getByRole("button", { name: "Save schedule" }).click();
    await page.getByText("Every 4 hours").first().waitFor();

    await page.getByRole("button", { name: "Schedule", exact: true }).click();
    await dialog(page).getByLabel("Synchronize").selectOption("daily");
    await dialog(page).getByLabel("Time (wall clock in the time zone)").fill("02:30");
    const zone = dialog(page).getByRole("combobox", { name: "Time zone" });
    await zone.fill("Europe/Berl");
    await page.getByRole("option", { name: "Europe/Berlin" }).click();
    await check(page, "08-schedule");
    await dialog(page).getByRole("button", { name: "Save schedule" }).click();
    await page.getByText("Daily at 02:30 (Europe/Berlin)").waitFor();
    await page.getByText(/^Next run /).waitFor();
    const c = (await http("GET", `/connections/${ids.plans}`)).body.connection;
    expect(c.displayName).toBe("Plans (north)");
    expect(c.schedule).toMatchObject({ type: "daily", time: "02:30", timeZone: "Europe/Berlin" });
    expect(c.schedule.nextRunDateTime).toEqual(expect.any(String));
  });

  it("changes the mapping: adds a composite model, unmaps with keepData and with deleteData; the last one is not unmappable", async () => {
    await reopen(page, `#/connections/${ids.plans}`, ada.apiKey);
    await heading(page, "Plans (north)").waitFor();
    await page.getByRole("button", { name: "Add composite models" }).click();
    const add = dialog(page);
    expect(await add.getByRole("checkbox", { name: "hvac.ifc", exact: true }).isDisabled()).toBe(true);
    await add.getByRole("checkbox", { name: "hvac-copy.ifc" }).check();
    await check(page, "09-add-composite-models");
    await add.getByRole("button", { name: "Add 1 composite model" }).click();
    await page.locator('[data-testid="composite"][data-path="hvac-copy.ifc"]').waitFor();

    // keepData
    await page.getByRole("button", { name: "Unmap hvac-copy.ifc" }).click();
    await dialog(page).getByText("The data already synchronized stays in the iModel").first().waitFor();
    await dialog(page).getByRole("button", { name: "Unmap", exact: true }).click();
    await page.locator('[data-testid="composite"][data-path="hvac-copy.ifc"]').waitFor({ state: "detached" });

    // deleteData: a delete job removes hvac.ifc's data; its progress is shown.
    const before = (await progress(page)).run;
    await page.getByRole("button", { name: "Unmap hvac.ifc" }).click();
    await dialog(page).getByRole("radio", { name: "Delete data" }).check();
    await check(page, "10-unmap-delete-data");
    await dialog(page).getByRole("button", { name: "Unmap", exact: true }).click();
    const job = await watchRun(page, before);
    expect(job[job.length - 1]).toMatchObject({ state: "Completed", result: "Success", done: 1, total: 1 });
    expect(job[job.length - 1].text).toMatch(/Delete job, mapping change/);
    expect(job[job.length - 1].text).toMatch(/1 of 1 file · [\d,]+ elements removed/);

    // The attached host goes with the reference file only it names.
    await page.getByRole("button", { name: "Unmap xref_host_attached_r2000.dxf" }).click();
    await dialog(page).getByText("goes with the reference files only it names: xref_target_grid_r2000.dxf").waitFor();
    await dialog(page).getByRole("button", { name: "Unmap", exact: true }).click();
    await page
      .locator('[data-testid="composite"][data-path="xref_host_attached_r2000.dxf"]')
      .waitFor({ state: "detached" });

    // The last composite model: no Unmap, and the reason.
    await page
      .getByText("The last composite model cannot be unmapped: removing every file means deleting the connection")
      .waitFor();
    expect(await page.getByRole("button", { name: /^Unmap / }).count()).toBe(0);
    await check(page, "11-mapping-last-composite");
    const c = (await http("GET", `/connections/${ids.plans}`)).body.connection;
    expect(c.sourceFiles.map((f: any) => f.path)).toEqual(["xref_host_overlay_r2018.dxf"]);
  });

  it("synchronizes several connections at once; the owner change is refused during the run, then done", async () => {
    await reopen(page, `#/imodels/${iModelId}`, ada.apiKey);
    await heading(page, CAMPUS).waitFor();
    await page.getByRole("checkbox", { name: "Select Plans (north)" }).check();
    await page.getByRole("checkbox", { name: "Select Site" }).check();
    await page.getByRole("button", { name: "Synchronize 2 connections" }).click();
    await page.getByText("2 runs queued").waitFor();
    await page.getByRole("link", { name: "Site", exact: true }).click();
    await heading(page, "Site").waitFor();
    // Site's run is queued behind Plans's, or executing: ownership cannot change now.
    await page.getByRole("button", { name: "Owner", exact: true }).click();
    await dialog(page).getByLabel("New owner").selectOption(bob.user.id);
    await dialog(page).getByRole("button", { name: "Change owner" }).click();
    await dialog(page).getByText("(RunInProgress)").waitFor();
    await check(page, "12-owner-refused-run-in-progress");
    await dialog(page).getByRole("button", { name: "Cancel" }).click();
    const run = await watchRun(page);
    expect(run[run.length - 1]).toMatchObject({ state: "Completed", result: "Success", done: 3, total: 3 });

    await check(page, "13-imodel-site-synchronized");
    await page.getByRole("link", { name: CAMPUS }).first().click();
    await page.getByRole("table", { name: "Connections" }).getByText("Success").first().waitFor();
    await check(page, "03-imodel-connections");
  });

  it("explains the GCS refusal, changes the owner with the advice to sync, deletes with keepData", async () => {
    await reopen(page, `#/connections/${ids.site}`, ada.apiKey);
    await heading(page, "Site").waitFor();
    await page.getByText("defined by this connection").waitFor();
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await dialog(page).getByTestId("gcs-note").waitFor();
    await dialog(page).getByRole("button", { name: "Delete connection" }).click();
    await dialog(page).getByText("(GcsDefiningConnection)").waitFor();
    await check(page, "14-delete-gcs-refused");
    await dialog(page).getByRole("button", { name: "Cancel" }).click();

    await page.getByRole("button", { name: "Owner", exact: true }).click();
    await dialog(page).getByText("token valid until").waitFor();
    await dialog(page).getByLabel("New owner").selectOption(bob.user.id);
    await dialog(page).getByRole("button", { name: "Change owner" }).click();
    await dialog(page).getByText("Bob Portal should run a manual sync now").waitFor();
    await check(page, "15-owner-changed");
    await dialog(page).getByRole("button", { name: "Close" }).last().click();
    await page.getByText("Bob Portal (").first().waitFor();
    expect((await http("GET", `/connections/${ids.site}`)).body.connection.owner.id).toBe(bob.user.id);

    await reopen(page, `#/connections/${ids.plans}`, ada.apiKey);
    await heading(page, "Plans (north)").waitFor();
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await dialog(page).getByRole("radio", { name: "Keep data" }).check();
    await dialog(page).getByRole("button", { name: "Delete connection" }).click();
    await page.getByText(/This connection was deleted \(its data was kept/).waitFor();
    expect((await http("GET", `/connections/${ids.plans}`)).body.connection).toMatchObject({
      status: "Deleted",
      deletion: { mode: "keepData" },
    });
  });

  it("signs out (the key is forgotten) and, as the admin, deletes with deleteData and follows the delete job", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You signed out. The key was forgotten.").waitFor();
    expect(await page.getByLabel("API key").inputValue()).toBe("");
    await page.goto(url(`#/connections/${ids.site}`));
    await signIn(page, stack().adminApiKey);
    await heading(page, "Site").waitFor();
    const before = (await progress(page)).run;
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await dialog(page).getByRole("radio", { name: "Delete data" }).check();
    await dialog(page).getByRole("button", { name: "Delete connection" }).click();
    const job = await watchRun(page, before);
    expect(job[job.length - 1]).toMatchObject({ state: "Completed", result: "Success", total: 3, done: 3 });
    expect(job[job.length - 1].text).toMatch(/Delete job, connection deleted/);
    await page.getByText(/This connection was deleted \(with its data/).waitFor();
    await check(page, "16-deleted-with-data");
    expect((await http("GET", `/imodels/${iModelId}`)).body.iModel.gcsDefinedBy).toBeUndefined();
  });

  it("shows the token banner when the owner token expired, with the scheduled syncs that fail, until a visit renews it", async () => {
    const tess = await createUser("Tess Banner");
    const as = (method: string, p: string, body?: unknown) => httpAs(tess.apiKey, method, p, body);
    const tokenSource = makeSource("portal-token", { "hvac.ifc": SAMPLE("ifc4_hvac_air_terminal_duct.ifc") });
    const m = await as("POST", "/imodels", { name: TOKEN_CAMPUS });
    const c = await as("POST", "/connections", {
      iModelId: m.body.iModel.id,
      displayName: "Token HVAC",
      source: { type: "local", path: tokenSource },
      sourceFiles: [{ path: "hvac.ifc", connectorType: "IFC" }],
    });
    expect(c.status).toBe(201);
    ids.token = c.body.connection.id;
    const sched = await as("PUT", `/connections/${ids.token}/schedule`, {
      type: "daily",
      time: "03:00",
      timeZone: "UTC",
    });
    expect(sched.status).toBe(200);
    // The token workflow with durations of seconds (test/owner-token.test.ts does the same), then no visit by Tess.
    await temporal().workflow.start(ownerTokenWorkflow, {
      workflowId: ownerTokenWorkflowId(tess.user.id),
      taskQueue: "imodel-sync",
      args: [{ userId: tess.user.id, lifetimeMs: 5_000, refreshWindowMs: 2_500, warningBeforeMs: 0 }],
      workflowIdConflictPolicy: "TERMINATE_EXISTING",
    });
    try {
      await eventually(
        "Tess's token to expire",
        async () => (await http("GET", `/users/${tess.user.id}`)).body.user.token?.state === "Expired",
        30_000,
        250,
      );
      const p = await newPage();
      await p.goto(url());
      await signIn(p, tess.apiKey);
      const banner = p.getByTestId("token-banner");
      await banner.getByText("Your owner token expired on").waitFor();
      await banner.getByRole("link", { name: "Token HVAC" }).waitFor();
      expect(await banner.textContent()).toContain("Any visit renews it");
      expect(await banner.textContent()).toContain("Scheduled syncs failing meanwhile: Token HVAC.");
      await check(p, "17-token-banner-expired");
      // The sign-in was a visit: the renewed token reaches the portal without a reload.
      await p
        .getByText(/Your owner token was renewed|Your owner token expires on/)
        .first()
        .waitFor({ timeout: 30_000 });
      await p.close();
    } finally {
      await temporal().workflow.getHandle(ownerTokenWorkflowId(tess.user.id)).terminate("scaled test token done");
    }
    ids.tessKey = tess.apiKey;
  });

  it("is usable with the keyboard alone: sign in, open the connection, synchronize, rename", async () => {
    const p = await newPage();
    await p.goto(url());
    await heading(p, "Sign in to imodel-sync").waitFor();

    /** Presses Tab until the focused element's accessible text matches `name`. */
    async function tabTo(name: RegExp, max = 60): Promise<void> {
      for (let i = 0; i < max; i++) {
        await p.keyboard.press("Tab");
        const focused = await p.evaluate((): string => {
          const doc = (globalThis as any).document;
          const el = doc.activeElement;
          if (!el) return "";
          const labelled = el.getAttribute("aria-label");
          const byId = el.id ? doc.querySelector(`label[for="${el.id}"]`)?.textContent : undefined;
          return labelled ?? byId ?? (el.closest("label")?.textContent || el.textContent || "");
        });
        if (name.test(focused.trim())) return;
      }
      throw new Error(`no focusable element matching ${name} within ${max} Tab presses`);
    }

    await tabTo(/^API key/);
    await p.keyboard.type(ids.tessKey);
    await p.keyboard.press("Enter");
    await heading(p, "iModels").waitFor();
    await tabTo(new RegExp(`^${TOKEN_CAMPUS}$`));
    await p.keyboard.press("Enter");
    await heading(p, TOKEN_CAMPUS).waitFor();
    await tabTo(/^Token HVAC$/);
    await p.keyboard.press("Enter");
    await heading(p, "Token HVAC").waitFor();
    await tabTo(/^Synchronize$/);
    await p.keyboard.press("Enter");
    const seen = await watchRun(p);
    expect(seen[seen.length - 1]).toMatchObject({ state: "Completed", result: "Success", done: 1, total: 1 });
    await tabTo(/^Rename$/);
    await p.keyboard.press("Enter");
    await dialog(p).waitFor();
    await tabTo(/^Display name/);
    await p.keyboard.press("ControlOrMeta+A");
    await p.keyboard.type("Token HVAC (renamed by keyboard)");
    await p.keyboard.press("Enter");
    await heading(p, "Token HVAC (renamed by keyboard)").waitFor();
    const { run } = await waitForRun(
      (await http("GET", `/connections/${ids.token}`)).body.connection._links.lastRun.href,
    );
    expect(run.result).toBe("Success");

    // A narrow window: the same page stays usable.
    await p.setViewportSize({ width: 390, height: 800 });
    await check(p, "18-connection-narrow");
    await p.close();
  });

  it("left no console error on any page and never wrote a key into the API's log", () => {
    expect(consoleErrors.join("\n")).toBe("");
    const log = fs.readFileSync(path.join(stack().dataDir, "logs", "api.log"), "utf8");
    for (const key of [ada.apiKey, bob.apiKey, ids.tessKey, stack().adminApiKey]) expect(log).not.toContain(key);
  });
});
