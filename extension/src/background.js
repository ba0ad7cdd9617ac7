// The extension's service worker: configuration, the event queue, delivery to the Rollcall
// API with retries, heartbeats, single sign-on detection and self-enrolment.

import {
  DEFAULT_API_URL,
  ENROLMENT_PATH,
  EVENTS_PER_REQUEST,
  FLUSH_DELAY_MS,
  HEARTBEAT_MINUTES,
  MAX_QUEUED_EVENTS,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  SCHEMA_VERSION,
} from "./settings.js";
import { ssoLogin } from "./sso.js";

/** The origin of the configuration: a managed policy, a self-enrolment, or none yet. */
export const CONFIG_SOURCE = {
  managedPolicy: "managed_policy",
  selfEnrolment: "self_enrolment",
  none: "none",
};

/**
 * Reads the configuration. A managed policy (`chrome.storage.managed`) wins over a
 * self-enrolment, because an administrator deployed the extension with it.
 */
async function readConfig() {
  let managed = {};
  try {
    managed = await chrome.storage.managed.get(["apiUrl", "extensionKey"]);
  } catch (error) {
    // Browsers without managed storage support reject the call.
    console.warn("managed storage is not readable", error);
  }
  if (managed.apiUrl && managed.extensionKey) {
    return {
      source: CONFIG_SOURCE.managedPolicy,
      apiUrl: managed.apiUrl,
      extensionKey: managed.extensionKey,
    };
  }
  const local = await chrome.storage.local.get(["apiUrl", "extensionKey"]);
  if (local.extensionKey) {
    return {
      source: CONFIG_SOURCE.selfEnrolment,
      apiUrl: local.apiUrl || DEFAULT_API_URL,
      extensionKey: local.extensionKey,
    };
  }
  return { source: CONFIG_SOURCE.none, apiUrl: local.apiUrl || DEFAULT_API_URL };
}

async function installId() {
  const { installId } = await chrome.storage.local.get("installId");
  if (installId) {
    return installId;
  }
  const created = crypto.randomUUID();
  await chrome.storage.local.set({ installId: created });
  return created;
}

function browserInfo() {
  const brands = navigator.userAgentData?.brands ?? [];
  const brand =
    brands.find((b) => /Chromium|Google Chrome|Microsoft Edge/.test(b.brand)) ?? brands[0];
  const match = navigator.userAgent.match(/Chrome\/([\d.]+)/);
  return {
    name: brand ? brand.brand.toLowerCase().replace(/\s+/g, "_") : "chromium",
    version: match ? match[1] : brand?.version ?? "unknown",
  };
}

// The queue lives in chrome.storage.local, so events survive the service worker stopping.
// Each event gets its id when it is queued, and keeps it on every retry, so the API counts a
// resent event once.
let queueLock = Promise.resolve();

function withQueue(change) {
  const run = queueLock.then(async () => {
    const { queue = [] } = await chrome.storage.local.get("queue");
    const next = await change(queue);
    if (next) {
      await chrome.storage.local.set({ queue: next });
    }
  });
  queueLock = run.catch(() => {});
  return run;
}

/** Queues an event and schedules delivery. */
async function queueEvent(event) {
  await withQueue((queue) => {
    queue.push({ id: crypto.randomUUID(), time: new Date().toISOString(), ...event });
    // Past the cap the oldest events go first; heartbeats carry the least.
    return queue.slice(-MAX_QUEUED_EVENTS);
  });
  scheduleFlush(FLUSH_DELAY_MS);
}

let flushTimer = null;
let failures = 0;

function scheduleFlush(delayMs) {
  if (flushTimer !== null) {
    return;
  }
  flushTimer = setTimeout(() => {
    flushTimer = null;
    flush().catch((error) => console.warn("delivery failed", error));
  }, delayMs);
}

/** Returns the backoff before the next attempt: exponential with full jitter, capped. */
function backoffMs(attempt) {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

let flushing = null;

/** Sends the queued events; a call during a delivery waits for that delivery instead. */
function flush() {
  flushing ??= deliver().finally(() => {
    flushing = null;
  });
  return flushing;
}

/**
 * Sends queued events, a request of up to EVENTS_PER_REQUEST at a time. A 202 removes the
 * events sent. A 400 removes them too, because the API will never accept them, and logs the
 * reasons. A 429, a 5xx or no response keeps them and retries with backoff.
 */
async function deliver() {
  const config = await readConfig();
  if (!config.extensionKey) {
    return { sent: 0, pending: (await chrome.storage.local.get("queue")).queue?.length ?? 0 };
  }
  let sent = 0;
  for (;;) {
    const { queue = [] } = await chrome.storage.local.get("queue");
    if (queue.length === 0) {
      failures = 0;
      return { sent, pending: 0 };
    }
    const batch = queue.slice(0, EVENTS_PER_REQUEST);
    const { identity } = await chrome.storage.local.get("identity");
    const body = {
      schema_version: SCHEMA_VERSION,
      install_id: await installId(),
      browser: browserInfo(),
      extension_version: chrome.runtime.getManifest().version,
      managed: config.source === CONFIG_SOURCE.managedPolicy,
      identity: identity ?? null,
      events: batch,
    };

    let status = 0;
    let answer = null;
    try {
      const response = await fetch(`${config.apiUrl.replace(/\/$/, "")}/v1/telemetry`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${config.extensionKey}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
      });
      status = response.status;
      answer = await response.json().catch(() => null);
    } catch (error) {
      console.warn("Rollcall API unreachable", error);
    }

    if (status === 202 || status === 400) {
      if (status === 400) {
        console.warn("Rollcall API rejected events", answer?.detail, answer?.errors);
      }
      const ids = new Set(batch.map((e) => e.id));
      await withQueue((current) => current.filter((e) => !ids.has(e.id)));
      sent += batch.length;
      failures = 0;
      continue;
    }
    failures += 1;
    const delay = backoffMs(failures - 1);
    console.warn(`Rollcall API returned ${status || "no response"}; retrying in ${delay} ms`);
    scheduleFlush(delay);
    return { sent, pending: queue.length, status };
  }
}

/** Redeems a self-enrolment link, which licenses the employee and returns an extension key. */
async function redeem(token) {
  const config = await readConfig();
  if (config.source === CONFIG_SOURCE.managedPolicy) {
    return { ok: false, detail: "this browser is configured by a managed policy" };
  }
  const response = await fetch(`${config.apiUrl.replace(/\/$/, "")}/v1/enroll`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token, install_id: await installId() }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    return { ok: false, status: response.status, detail: answer.detail };
  }
  await chrome.storage.local.set({ extensionKey: answer.extension_key, apiUrl: config.apiUrl });
  await queueEvent({ type: "heartbeat" });
  return { ok: true, licensed: answer.licensed, detail: answer.detail };
}

async function status() {
  const config = await readConfig();
  const { queue = [], identity = null } = await chrome.storage.local.get(["queue", "identity"]);
  return {
    configSource: config.source,
    apiUrl: config.apiUrl,
    installId: await installId(),
    identity,
    queued: queue.length,
    failures,
  };
}

chrome.runtime.onMessage.addListener((message, sender, reply) => {
  const handle = async () => {
    switch (message?.type) {
      case "identity":
        await chrome.storage.local.set({
          identity: { email: message.email, source: message.source },
        });
        await queueEvent({ type: "heartbeat" });
        return { ok: true };
      case "login":
        await queueEvent({
          type: message.eventType,
          app: message.app,
          account_email: message.accountEmail ?? null,
          login_method: message.loginMethod,
        });
        return { ok: true };
      case "status":
        return status();
      case "setApiUrl":
        await chrome.storage.local.set({ apiUrl: message.apiUrl });
        return status();
      case "redeem":
        return redeem(message.token);
      default:
        return { ok: false, detail: "unknown message" };
    }
  };
  handle().then(reply, (error) => reply({ ok: false, detail: String(error) }));
  return true;
});

// Single sign-on: the top frame leaving an app for an identity provider's sign-in page. The
// tab's last page names the app when the request does not.
const lastPage = new Map();

chrome.webNavigation.onCommitted.addListener(({ tabId, frameId, url }) => {
  if (frameId === 0) {
    lastPage.set(tabId, url);
  }
});

chrome.webNavigation.onBeforeNavigate.addListener(async ({ tabId, frameId, url }) => {
  if (frameId !== 0) {
    return;
  }
  const enrolment = enrolmentToken(url);
  if (enrolment) {
    const result = await redeem(enrolment);
    console.info("self-enrolment", result.ok ? "completed" : "failed", result.detail ?? "");
    return;
  }
  const { identity } = await chrome.storage.local.get("identity");
  const login = ssoLogin(url, lastPage.get(tabId), identity?.email);
  if (login) {
    await queueEvent(login);
  }
});

/** Returns the token of a self-enrolment link, such as `https://console.example/enrol?token=rce_...`. */
function enrolmentToken(url) {
  try {
    const parsed = new URL(url);
    const token = parsed.searchParams.get("token");
    return parsed.pathname.endsWith(ENROLMENT_PATH) && token?.startsWith("rce_") ? token : null;
  } catch {
    return null;
  }
}

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === "heartbeat") {
    queueEvent({ type: "heartbeat" });
  } else if (alarm.name === "flush") {
    scheduleFlush(0);
  }
});

async function start() {
  await chrome.alarms.create("heartbeat", { periodInMinutes: HEARTBEAT_MINUTES });
  // A backstop for a retry timer lost when the browser stopped the service worker.
  await chrome.alarms.create("flush", { periodInMinutes: 1 });
  await queueEvent({ type: "heartbeat" });
}

chrome.runtime.onInstalled.addListener(start);
chrome.runtime.onStartup.addListener(start);

// For the options page and the tests.
self.rollcall = { status, flush, redeem };
