/**
 * The portal in a real browser (as test/portal.test.ts), for item accounting and the trust features of
 * synchronization (README "Portal" and "Synchronization"): each task's items read, written and not written by reason
 * and class with example identifiers; warnings with counts and examples (a class the reader does not know, a circular
 * reference naming its chain); nested reference files under the file that names them, at any depth, in the mapping
 * and in the run; an incomplete file explained; the deletion guard's settings viewed and changed, a held file
 * explained with its counts and applied with "Synchronize and apply deletions" after a confirmation; a file that
 * changes while it is read shown waiting to be tried again, with the reason. axe-core on every page and dialog, and a
 * screenshot of each at 1280x800.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { portalDriver, SCREENSHOT_DIR, startChromium, type StartedBrowser } from "./browser";
import { createUser, eventually, FIXTURE, http, httpAs, makeSource, SAMPLE, stack, tasksOf } from "./helpers";

const I = (f: string) => FIXTURE(`integrity/${f}`);
const TAG = Date.now().toString(36).slice(-5);

describe("portal in a browser: item accounting, warnings, nested references, the deletion guard", () => {
  const started = Date.now();
  let chromium: StartedBrowser;
  let page: Page;
  let tia: { user: any; apiKey: string };
  let source: string;
  const ids: Record<string, string> = {};
  const { consoleErrors, newPage, check, reopen, heading, dialog, progress, newestRunId, watchRun } = portalDriver(
    () => chromium,
    () => stack().apiUrl,
  );
  const task = (p: Page, file: string) => p.locator(`[data-testid="task"][data-path="${file}"]`).first();

  async function connect(displayName: string, files: string[]): Promise<string> {
    const c = await httpAs(tia.apiKey, "POST", "/connections", {
      iModelId: ids.iModel,
      displayName,
      source: { type: "local", path: source },
      sourceFiles: files.map((f) => ({ path: f, connectorType: f.endsWith(".dxf") ? "DXF" : "IFC" })),
    });
    expect(c.status, JSON.stringify(c.body)).toBe(201);
    return c.body.connection.id;
  }

  /** Opens the connection's page as Tia (unless it is open), presses Synchronize and watches its run to the end. */
  async function synchronize(connectionId: string, title: string) {
    if (!page.url().endsWith(`#/connections/${connectionId}`))
      await reopen(page, `#/connections/${connectionId}`, tia.apiKey);
    await heading(page, title).waitFor();
    const before = await newestRunId(page);
    await page.getByRole("button", { name: "Synchronize", exact: true }).click();
    const seen = await watchRun(page, before, 180_000);
    return seen[seen.length - 1];
  }

  beforeAll(async () => {
    console.log(`portal screenshots: ${SCREENSHOT_DIR}`);
    chromium = await startChromium();
    tia = await createUser("Tia Trust");
    source = makeSource("portal-trust", {
      "model.ifc": I("model_every_item_kind.ifc"),
      "mixed.ifc": I("ifc4_with_ifc4x3_classes.ifc"),
      "host.dxf": I("xref-nested/host.dxf"),
      "b.dxf": I("xref-nested/b.dxf"),
      "c.dxf": I("xref-nested/c.dxf"),
      "self.dxf": I("xref-nested/self.dxf"),
      "structure.ifc": SAMPLE("ifc2x3_structural_revit_example_rev1.ifc"),
    });
    // model_rev1.ifc with about 24 MB of blank lines before its last ENDSEC: reading it takes long enough for appends
    // to land between the two stats of a read.
    const rev1 = fs.readFileSync(I("model_rev1.ifc"), "latin1");
    const end = rev1.lastIndexOf("ENDSEC;");
    const padding = `${" ".repeat(1023)}\n`.repeat(24 * 1024);
    fs.writeFileSync(path.join(source, "growing.ifc"), `${rev1.slice(0, end)}${padding}${rev1.slice(end)}`, "latin1");
    const m = await httpAs(tia.apiKey, "POST", "/imodels", { name: `Trust campus ${TAG}` });
    expect(m.status).toBe(201);
    ids.iModel = m.body.iModel.id;
    ids.checks = await connect("Checks", ["model.ifc", "mixed.ifc", "host.dxf", "self.dxf"]);
    ids.guarded = await connect("Guarded", ["structure.ifc"]);
    ids.changing = await connect("Changing", ["growing.ifc"]);
    page = await newPage();
  });

  afterAll(async () => {
    await chromium?.close();
    console.log(
      `portal browser tests (accounting, guard): ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOT_DIR}`,
    );
  });

  it("shows nested references at any depth with cycles marked, each task's items by reason and class, and its warnings", async () => {
    const end = await synchronize(ids.checks, "Checks");
    expect(end).toMatchObject({ state: "Completed", result: "Success", done: 6, total: 6 });

    // The mapping: host.dxf → b.dxf → c.dxf, and b.dxf's reference back to host.dxf marked circular; self.dxf → itself.
    const host = page.locator('[data-testid="composite"][data-path="host.dxf"]');
    await host
      .locator('[data-testid="reference"][data-path="b.dxf"] [data-testid="reference"][data-path="c.dxf"]')
      .waitFor();
    const back = host.locator(
      '[data-testid="reference"][data-path="b.dxf"] [data-testid="reference"][data-path="host.dxf"]',
    );
    expect(await back.getByTestId("circular").textContent()).toContain("circular reference");
    await page.locator('[data-testid="composite"][data-path="self.dxf"]').getByTestId("circular").waitFor();
    // The run: c.dxf under b.dxf, under host.dxf.
    expect(await task(page, "b.dxf").getAttribute("data-depth")).toBe("1");
    expect(await task(page, "c.dxf").getAttribute("data-depth")).toBe("2");
    expect(await task(page, "c.dxf").textContent()).toContain("reference file of b.dxf, nested under host.dxf");
    expect(await task(page, "model.ifc").textContent()).toContain("12 read: 6 written, 6 not written");
    await check(page, "30-nested-references-and-items");

    // Items of a file with one item of every not-written reason.
    await page.getByRole("button", { name: "Items of model.ifc" }).click();
    const items = dialog(page);
    await items.getByTestId("items-summary").waitFor();
    expect(await items.getByTestId("items-summary").textContent()).toMatch(
      /^12 items read from the file: 6 written \(6 inserted, 0 updated, 0 unchanged\) and 6 not written\. Every item read is accounted for\./,
    );
    const codes = await items
      .getByTestId("not-written")
      .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-code")));
    expect([...new Set(codes)].sort()).toEqual([
      "DuplicateIdentifier",
      "GeometryNotConverted",
      "MissingIdentifier",
      "NoGeometryOrPlacement",
      "OpeningElement",
      "UnsupportedEntityType",
    ]);
    const unsupported = items.locator('[data-testid="not-written"][data-code="UnsupportedEntityType"]');
    expect(await unsupported.textContent()).toContain("IFCFUTURETHING");
    expect(await unsupported.textContent()).toContain("#180");
    await check(page, "31-task-items");
    await items.getByRole("button", { name: "Close", exact: true }).last().click();
    await items.waitFor({ state: "detached" });

    // A circular reference names its chain.
    await page.getByRole("button", { name: "1 warning of b.dxf" }).click();
    const circular = dialog(page).locator('[data-testid="warning"][data-code="CircularReference"]');
    expect(await circular.textContent()).toContain("circular reference: host.dxf → b.dxf → host.dxf");
    await check(page, "32-warnings-circular-reference");
    await dialog(page).getByRole("button", { name: "Close", exact: true }).last().click();
    await dialog(page).waitFor({ state: "detached" });

    // A class the reader does not know: named, with its count and an example.
    await page.getByRole("button", { name: /warnings? of mixed\.ifc/ }).click();
    const rail = dialog(page).locator('[data-testid="warning"][data-code="UnsupportedEntityType"]');
    expect(await rail.textContent()).toContain("IfcRail");
    expect(await rail.textContent()).toContain("#100");
    await dialog(page).getByRole("button", { name: "Close", exact: true }).last().click();
    await dialog(page).waitFor({ state: "detached" });
  });

  it("explains an incomplete file: nothing written, nothing deleted", async () => {
    fs.copyFileSync(I("model_rev2_truncated.ifc"), path.join(source, "model.ifc"));
    const end = await synchronize(ids.checks, "Checks");
    expect(end).toMatchObject({ state: "Completed", result: "PartialSuccess" });
    const row = task(page, "model.ifc");
    await row.getByText("FileIncomplete").waitFor();
    expect(await row.textContent()).toContain("model.ifc: the file is incomplete (");
    expect(await row.textContent()).toContain("Nothing was written and nothing deleted");
    await check(page, "33-file-incomplete");
  });

  it("holds a file by the deletion guard, explains it with its counts, applies it after a confirmation; the guard's settings change", async () => {
    const first = await synchronize(ids.guarded, "Guarded");
    expect(first).toMatchObject({ result: "Success", done: 1 });
    expect(await page.getByTestId("deletion-guard").textContent()).toContain(
      "On: holds a file that would lose more than 50 % of its elements, and at least 10 of them.",
    );

    // Another model saved over the file: all 120 elements (116 products and their spatial structure) would go.
    fs.copyFileSync(SAMPLE("ifc4_hvac_air_terminal_duct.ifc"), path.join(source, "structure.ifc"));
    const heldRun = await synchronize(ids.guarded, "Guarded");
    expect(heldRun).toMatchObject({ result: "Error" });
    const held = page.getByTestId("held-files");
    await held.waitFor();
    expect(await held.textContent()).toContain(
      "structure.ifc: 120 of its 120 elements in the iModel (100 %) would be deleted",
    );
    expect(await task(page, "structure.ifc").textContent()).toContain("DeletionGuard");
    await check(page, "34-deletion-guard-held");

    await held.getByRole("button", { name: "Synchronize and apply deletions" }).click();
    const confirm = dialog(page);
    await confirm.getByText("structure.ifc: 120 of its 120 elements in the iModel (100 %) would be deleted").waitFor();
    await check(page, "35-confirm-deletions");
    const before = (await progress(page)).run;
    await confirm.getByRole("button", { name: "Synchronize and apply deletions" }).click();
    const seen = await watchRun(page, before, 180_000);
    const applied = seen[seen.length - 1];
    expect(applied).toMatchObject({ state: "Completed", result: "Success" });
    expect(applied.text).toContain("deletions confirmed");
    await held.waitFor({ state: "detached" });
    const { run } = (await http("GET", `/connections/${ids.guarded}/runs/${applied.run}`)).body;
    expect(run.confirmDeletions).toBe(true);
    expect(tasksOf(run)[0].elements).toMatchObject({ deleted: 120, inserted: 7 });

    // The settings: a share out of range is refused next to its field, then a valid change is shown.
    await page.getByRole("button", { name: "Change the deletion guard" }).click();
    const settings = dialog(page);
    await settings.getByLabel(/share of a file's elements would be deleted/).fill("150");
    await settings.getByRole("button", { name: "Save" }).click();
    await settings.getByText(/fraction must be from 0 to less than 1/).waitFor();
    await check(page, "36-deletion-guard-settings");
    await settings.getByLabel(/share of a file's elements would be deleted/).fill("40");
    await settings.getByLabel("...and at least this many elements").fill("200");
    await settings.getByRole("button", { name: "Save" }).click();
    await page
      .getByTestId("deletion-guard")
      .getByText("On: holds a file that would lose more than 40 % of its elements, and at least 200 of them.")
      .waitFor();
    expect((await http("GET", `/connections/${ids.guarded}`)).body.connection.deletionGuard).toEqual({
      enabled: true,
      fraction: 0.4,
      minElements: 200,
    });
  });

  it("shows a file that changes while it is read waiting to be tried again, with the reason, until it synchronizes", async () => {
    await reopen(page, `#/connections/${ids.changing}`, tia.apiKey);
    await heading(page, "Changing").waitFor();
    // A writer that appends a line every millisecond until stopped: a process of its own (so that no pause of this one
    // lets a read through) that sleeps between appends (so that, woken, it runs soon even on a busy machine).
    const growing = path.join(source, "growing.ifc");
    const size = fs.statSync(growing).size;
    const appender = spawn(
      process.execPath,
      ["-e", 'setInterval(() => require("node:fs").appendFileSync(process.argv[1], "\\n"), 1)', growing],
      { stdio: "ignore" },
    );
    const waiting = page.locator('[data-testid="task-waiting"][data-path="growing.ifc"]');
    try {
      await eventually("the writer to append", async () => fs.statSync(growing).size > size);
      // A read can still fall between two appends (the writer not scheduled meanwhile): then the run ends without
      // waiting, and the next run (the file has changed) tries again; at most 3 runs.
      for (let runs = 1; ; runs++) {
        const before = await newestRunId(page);
        await page.getByRole("button", { name: "Synchronize", exact: true }).click();
        const ended = await eventually(
          "the task to wait, or the run to end",
          async () => {
            if (await waiting.count()) return "waiting";
            const p = await progress(page).catch(() => undefined);
            return p?.run && p.run !== before && p.state === "Completed" && p;
          },
          120_000,
          100,
        );
        if (ended === "waiting") break;
        expect(runs, `no read saw the file change; last run ${JSON.stringify(ended)}`).toBeLessThan(3);
      }
      expect(await waiting.textContent()).toMatch(
        /growing\.ifc is waiting to be tried again.*FileChangedDuringRead, growing\.ifc: the file changed while it was read/,
      );
      expect(await waiting.textContent()).toContain("It is read again after a pause.");
      await check(page, "37-waiting-to-retry");
    } finally {
      appender.kill("SIGKILL");
    }
    const seen = await watchRun(page, null, 300_000);
    expect(seen[seen.length - 1]).toMatchObject({ state: "Completed", result: "Success" });
  });

  it("left no console error on any page", () => {
    expect(consoleErrors.join("\n")).toBe("");
  });
});
