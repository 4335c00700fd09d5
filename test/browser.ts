/**
 * Chromium for the portal's browser tests: Debian's `chromium` (scripts/ensure-tools.sh chromium installs it), driven
 * by playwright-core, since browser downloads are not possible here. Every start uses a fresh profile and the flags
 * that keep Chromium from calling out (no network but loopback on this machine). Also: axe-core accessibility checks
 * and screenshots.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

/** The system browser the tests drive. */
export const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";

/** Flags for a headless Chromium that makes no call of its own (updates, sync, metrics, QUIC probes). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export interface StartedBrowser {
  /** The browser's one context (its fresh profile); open tabs with `context.newPage()`. */
  context: BrowserContext;
  close: () => Promise<void>;
}

/**
 * Starts Chromium with a fresh profile (a temporary `--user-data-dir`, removed on close), pages 1280x800.
 * @throws Error when the browser is not installed (run `bash scripts/ensure-tools.sh chromium`).
 */
export async function startChromium(): Promise<StartedBrowser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install it with 'bash scripts/ensure-tools.sh chromium'`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "imodel-sync-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    // Fewer transitions: dialogs and backdrops reach their final colours at once (axe measures contrast).
    reducedMotion: "reduce",
    timeout: 60_000,
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** An axe-core violation as the tests report it. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

const AXE_SOURCE = () => fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on the page as it is now, injected through the DevTools protocol (the
 * page's Content-Security-Policy does not apply to it). Returns the serious and critical violations.
 */
export async function seriousAxeViolations(page: Page): Promise<AxeViolation[]> {
  await settled(page);
  // (Callbacks of page.evaluate run in the page: its globals are reached through globalThis.)
  const loaded = await page.evaluate(() => typeof (globalThis as any).axe !== "undefined");
  if (!loaded) await page.evaluate(AXE_SOURCE());
  const violations = await page.evaluate(async () => {
    const w = globalThis as any;
    const result = await w.axe.run(w.document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return result.violations.map((v: any) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n: any) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`),
    }));
  });
  return (violations as AxeViolation[]).filter((v) => v.impact === "serious" || v.impact === "critical");
}

/**
 * Waits (at most 3 s) until the page's finite animations and transitions ended (a dialog fading in shows blended
 * colours meanwhile); endless ones (an indeterminate progress bar) are not waited for.
 */
export async function settled(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const w = globalThis as any;
    const finite = w.document
      .getAnimations()
      .filter((a: any) => a.effect?.getComputedTiming?.().iterations !== Infinity)
      .map((a: any) => a.finished.catch(() => undefined));
    await Promise.race([Promise.all(finite), new Promise((r) => w.setTimeout(r, 3000))]);
  });
}

/** Where the browser tests write their screenshots (git-ignored); `PORTAL_SCREENSHOTS` moves it. */
export const SCREENSHOT_DIR = path.resolve(
  process.env.PORTAL_SCREENSHOTS ?? path.join(__dirname, "..", "test-output", "screenshots"),
);

/**
 * Saves a screenshot as `<name>.png` in {@link SCREENSHOT_DIR}: the whole page, or only the window while a dialog is
 * open (its backdrop covers the window, not the page). Returns its path.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  const dialogOpen = (await page.getByRole("dialog").count()) > 0;
  await page.screenshot({ path: file, fullPage: !dialogOpen });
  return file;
}

/** The newest run's progress element on a connection page, as the browser tests read it. */
export interface ProgressReading {
  run: string | null;
  state: string | null;
  result: string | null;
  done: number;
  total: number;
  text: string;
}

/**
 * What the portal's browser tests do on every page: open tabs that collect console errors, sign in, find headings and
 * dialogs, check a page (axe-core, then a screenshot) and follow a connection's newest run. One per test file.
 * @param apiUrl the test stack's API address (the portal is served at its `/`).
 */
export function portalDriver(browser: () => StartedBrowser, apiUrl: () => string) {
  /** Console errors of the pages (a refused request's "Failed to load resource" line is expected and left out). */
  const consoleErrors: string[] = [];
  const url = (hash = "") => `${apiUrl()}/${hash}`;

  async function newPage(): Promise<Page> {
    const p = await browser().context.newPage();
    p.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
    });
    p.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
    return p;
  }

  /** axe-core on the page as it is, then a screenshot. */
  async function check(p: Page, name: string): Promise<void> {
    const violations = await seriousAxeViolations(p);
    if (violations.length) throw new Error(`${name}: axe violations ${JSON.stringify(violations, null, 1)}`);
    await screenshot(p, name);
  }

  async function signIn(p: Page, key: string): Promise<void> {
    await p.getByLabel("API key").fill(key);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("button", { name: "Sign out" }).waitFor();
  }

  /** Opens a portal page by its address: a full reload, so the key is forgotten and the user signs in again. */
  async function reopen(p: Page, hash: string, key: string): Promise<void> {
    await p.goto(url(hash));
    await p.reload();
    await signIn(p, key);
  }

  const heading = (p: Page, name: string) => p.getByRole("heading", { level: 1, name, exact: true });
  const dialog = (p: Page) => p.getByRole("dialog");

  /** The progress element of the connection page's newest run. */
  async function progress(p: Page): Promise<ProgressReading> {
    return p.getByTestId("run-progress").evaluate((e) => ({
      run: e.getAttribute("data-run"),
      state: e.getAttribute("data-state"),
      result: e.getAttribute("data-result"),
      done: Number(e.getAttribute("data-done")),
      total: Number(e.getAttribute("data-total")),
      text: e.textContent ?? "",
    }));
  }

  /**
   * Watches the newest run's progress bar (no reload) until a run other than `notRun` completes; returns every
   * distinct value seen.
   */
  async function watchRun(p: Page, notRun?: string | null, timeoutMs = 120_000): Promise<ProgressReading[]> {
    const seen: ProgressReading[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await progress(p).catch(() => undefined);
      if (v && v.run && v.run !== notRun) {
        const last = seen[seen.length - 1];
        if (!last || last.state !== v.state || last.done !== v.done || last.total !== v.total) seen.push(v);
        if (v.state === "Completed") return seen;
      }
      if (Date.now() > deadline) throw new Error(`the run did not complete; seen ${JSON.stringify(seen)}`);
      await p.waitForTimeout(100);
    }
  }

  /** The newest run's id on a connection page, or null while it has none (no waiting). */
  async function newestRunId(p: Page): Promise<string | null> {
    return (await p.getByTestId("run-progress").count()) ? (await progress(p)).run : null;
  }

  /** The id in the page's address (`#/connections/<id>` → id; `#/imodels/<id>/team` → id). */
  const idInUrl = (p: Page) => decodeURIComponent(new URL(p.url()).hash.split("/")[2]);

  return {
    consoleErrors,
    url,
    newPage,
    check,
    signIn,
    reopen,
    heading,
    dialog,
    progress,
    newestRunId,
    watchRun,
    idInUrl,
  };
}
