// Local stand-ins for the sites the extension watches, served over HTTPS on 127.0.0.1 with a
// certificate made for the test. Chromium reaches them by their real host names through its
// host-resolver rules, and the page is chosen by the Host header.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createHttpServer, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ADA = "ada.lovelace@example.com";
export const GRACE = "grace.hopper@example.com";

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

const PAGES = {
  "mail.google.com": () => page(`Inbox (3) - ${ADA} - Gmail`, "<div role=main>Inbox</div>"),
  "outlook.office.com": () =>
    page(
      "Mail - Grace Hopper - Outlook",
      `<div id="mectrl_currentAccount_primary">Grace Hopper</div><div id="mectrl_currentAccount_secondary">${GRACE}</div>`,
    ),
  "app.slack.com": (path) =>
    path.startsWith("/signin")
      ? page(
          "Sign in | Slack",
          `<form method="post" action="/signin/done"><input type="email" name="email"><input type="password" name="password"><button type="submit">Sign in with email</button></form>`,
        )
      : page("Slack", "<p>Signed in</p>"),
  "www.notion.so": (path) =>
    path.startsWith("/signup")
      ? page(
          "Create your Notion account",
          `<form method="post" action="/signup/done"><input type="email" name="email"><input type="password" name="password" autocomplete="new-password"><input type="password" name="confirm"><button type="submit">Continue</button></form>`,
        )
      : page("Notion", "<p>Welcome</p>"),
  "www.figma.com": () =>
    page(
      "Log in | Figma",
      `<a id="google" href="https://accounts.google.com/o/oauth2/v2/auth?client_id=figma.apps.googleusercontent.com&redirect_uri=https%3A%2F%2Fwww.figma.com%2Foauth%2Fcallback&response_type=code&scope=openid%20email">Sign in with Google</a>`,
    ),
  "accounts.google.com": () => page("Sign in - Google Accounts", "<p>Choose an account</p>"),
  "console.rollcall.example": () => page("Rollcall enrolment", "<p>Enrolling this browser…</p>"),
};

/** Starts the HTTPS server of the stand-in sites. */
export async function startSites() {
  const dir = mkdtempSync(join(tmpdir(), "rollcall-sites-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    "-subj", "/CN=rollcall-test-sites",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  const server = createHttpsServer(
    { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) },
    (request, response) => {
      const host = (request.headers.host ?? "").split(":")[0];
      const render = PAGES[host];
      response.writeHead(render ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
      response.end(render ? render(request.url ?? "/") : page("Not found", host));
    },
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: server.address().port };
}

/**
 * Starts a proxy to the Rollcall API that misbehaves as networks do. It returns 503 for the
 * first telemetry request without passing it on. It passes the second on but still returns
 * 503, as when a response is lost. Later requests pass through. It records the event ids of
 * every request the API accepted.
 */
export async function startFlakyApi(apiUrl) {
  const target = new URL(apiUrl);
  const log = { requests: 0, answered503: 0, forwardedEventIds: [] };
  const server = createHttpServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      const telemetry = request.url === "/v1/telemetry";
      const attempt = telemetry ? ++log.requests : 0;
      if (attempt === 1) {
        log.answered503 += 1;
        response.writeHead(503, { "content-type": "application/problem+json" });
        response.end(JSON.stringify({ status: 503, detail: "try again" }));
        return;
      }
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          path: request.url,
          method: request.method,
          headers: { ...request.headers, host: target.host },
        },
        (answer) => {
          const parts = [];
          answer.on("data", (chunk) => parts.push(chunk));
          answer.on("end", () => {
            if (telemetry && answer.statusCode === 202) {
              for (const event of JSON.parse(body.toString()).events ?? []) {
                log.forwardedEventIds.push(event.id);
              }
            }
            if (attempt === 2) {
              log.answered503 += 1;
              response.writeHead(503, { "content-type": "application/problem+json" });
              response.end(JSON.stringify({ status: 503, detail: "try again" }));
              return;
            }
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            response.end(Buffer.concat(parts));
          });
        },
      );
      upstream.on("error", () => {
        response.writeHead(502);
        response.end();
      });
      upstream.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}`, log };
}
