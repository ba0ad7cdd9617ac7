// Runs the reference extension in Debian's Chromium, headless and kept off the network, against
// the local Rollcall API. tests/tests/extension_browser.rs starts the API and runs this file
// with:
//
//   ROLLCALL_API_URL         the local runner's HTTP API
//   ROLLCALL_EXTENSION_KEY   the tenant's extension key, deployed by managed policy
//   ROLLCALL_ENROLMENT_LINK  a self-enrolment link for grace.hopper@example.com
//   ROLLCALL_REPORT          where to write what the extension sent, for the Rust side
//
// The managed test writes a Chromium policy file under /etc/chromium/policies/managed and
// removes it when it ends, so it needs to run as root, as CI does.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { ADA, GRACE, startFlakyApi, startSites } from "./sites.mjs";

const EXTENSION_DIR = join(dirname(fileURLToPath(import.meta.url)), "..");
// Derived from the public key in manifest.json, so it is the same wherever the checkout is.
const EXTENSION_ID = "cbnehmmoojgmlpnnefopjglpcejaoahp";
const POLICY_FILE = "/etc/chromium/policies/managed/rollcall-reference-extension-test.json";
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run these tests through cargo test --test extension_browser`);
  return value;
};

const report = {};
let sites;

before(async () => {
  sites = await startSites();
});

after(() => {
  sites?.server.close();
  rmSync(POLICY_FILE, { force: true });
  writeFileSync(env("ROLLCALL_REPORT"), JSON.stringify(report, null, 2));
});

async function launch() {
  const context = await chromium.launchPersistentContext(
    mkdtempSync(join(tmpdir(), "rollcall-chromium-")),
    {
      executablePath: CHROMIUM,
      headless: true,
      ignoreHTTPSErrors: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-quic",
        "--disable-sync",
        "--disable-background-networking",
        "--disable-component-update",
        "--ignore-certificate-errors",
        // Every host name goes to the stand-in sites; the API is an IP address and stays.
        `--host-resolver-rules=MAP * 127.0.0.1:${sites.port}, EXCLUDE 127.0.0.1`,
        `--disable-extensions-except=${EXTENSION_DIR}`,
        `--load-extension=${EXTENSION_DIR}`,
      ],
    },
  );
  let [worker] = context.serviceWorkers();
  worker ??= await context.waitForEvent("serviceworker", { timeout: 15_000 });
  assert.equal(new URL(worker.url()).host, EXTENSION_ID);
  return { context, worker };
}

/** Polls the extension's status until `done` holds, or fails after `timeoutMs`. */
async function waitForStatus(worker, done, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let status;
  while (Date.now() < deadline) {
    status = await worker.evaluate(() => self.rollcall.status());
    if (done(status)) {
      return status;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.fail(`timed out waiting for ${what}; last status ${JSON.stringify(status)}`);
}

async function visit(context, url) {
  const tab = await context.newPage();
  await tab.goto(url);
  return tab;
}

test("managed install reports identity, logins and sign-ups through retries", async () => {
  const api = await startFlakyApi(env("ROLLCALL_API_URL"));
  mkdirSync(dirname(POLICY_FILE), { recursive: true });
  writeFileSync(
    POLICY_FILE,
    JSON.stringify({
      "3rdparty": {
        extensions: {
          [EXTENSION_ID]: { apiUrl: api.url, extensionKey: env("ROLLCALL_EXTENSION_KEY") },
        },
      },
    }),
  );
  const { context, worker } = await launch();
  try {
    const configured = await waitForStatus(
      worker,
      (s) => s.configSource === "managed_policy",
      "the managed policy",
    );
    assert.equal(configured.apiUrl, api.url);

    await visit(context, "https://mail.google.com/mail/u/0/#inbox");
    await waitForStatus(worker, (s) => s.identity?.email === ADA, "the Gmail identity");

    const slack = await visit(context, "https://app.slack.com/signin");
    await slack.fill('input[type="email"]', ADA);
    await slack.fill('input[type="password"]', "correct horse battery staple");
    await Promise.all([slack.waitForURL("**/signin/done"), slack.click('button[type="submit"]')]);

    const notion = await visit(context, "https://www.notion.so/signup");
    await notion.fill('input[type="email"]', ADA);
    await notion.fill('input[name="password"]', "correct horse battery staple");
    await notion.fill('input[name="confirm"]', "correct horse battery staple");
    await Promise.all([notion.waitForURL("**/signup/done"), notion.click('button[type="submit"]')]);

    const figma = await visit(context, "https://www.figma.com/login");
    await Promise.all([figma.waitForURL("https://accounts.google.com/**"), figma.click("#google")]);

    const settled = await waitForStatus(
      worker,
      (s) => s.queued === 0 && api.log.forwardedEventIds.length > 0,
      "delivery of every event",
      60_000,
    );
    assert.ok(api.log.answered503 >= 2, "the extension met two 503 answers");
    report.managed = {
      installId: settled.installId,
      configSource: settled.configSource,
      forwardedEventIds: api.log.forwardedEventIds,
      distinctEventIds: [...new Set(api.log.forwardedEventIds)],
    };
    assert.ok(
      report.managed.forwardedEventIds.length > report.managed.distinctEventIds.length,
      "the lost response made the extension send some events twice",
    );
  } finally {
    await context.close();
    api.server.close();
    rmSync(POLICY_FILE, { force: true });
  }
});

test("self-enrolment configures an unmanaged install", async () => {
  rmSync(POLICY_FILE, { force: true });
  assert.ok(!existsSync(POLICY_FILE));
  const { context, worker } = await launch();
  try {
    await waitForStatus(worker, (s) => s.configSource === "none", "an unconfigured start");

    const options = await visit(context, `chrome-extension://${EXTENSION_ID}/options.html`);
    await options.fill("#api-url", env("ROLLCALL_API_URL"));
    await options.click('#api button[type="submit"]');
    await waitForStatus(worker, (s) => s.apiUrl === env("ROLLCALL_API_URL"), "the API URL");

    // The link from the enrolment email, opened in this browser.
    await visit(context, env("ROLLCALL_ENROLMENT_LINK"));
    await waitForStatus(worker, (s) => s.configSource === "self_enrolment", "the enrolment");
    await options.reload();
    assert.equal(
      await options.locator("#status").getAttribute("data-config-source"),
      "self_enrolment",
    );

    await visit(context, "https://outlook.office.com/mail/");
    const settled = await waitForStatus(
      worker,
      (s) => s.identity?.email === GRACE && s.queued === 0,
      "the Outlook identity to be delivered",
      60_000,
    );
    report.selfEnrolled = { installId: settled.installId, configSource: settled.configSource };
  } finally {
    await context.close();
  }
});
