// Single sign-on recognition, without a browser.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ssoLogin } from "../src/sso.js";

const ADA = "ada.lovelace@example.com";

test("Google sign-in names the app from redirect_uri", () => {
  const login = ssoLogin(
    "https://accounts.google.com/o/oauth2/v2/auth?client_id=x&redirect_uri=https%3A%2F%2Fwww.figma.com%2Foauth%2Fcallback",
    "https://www.figma.com/login",
    ADA,
  );
  assert.deepEqual(login, {
    type: "login",
    app: { domain: "www.figma.com", name: "www.figma.com" },
    account_email: ADA,
    login_method: "oidc_google",
    identity_provider: "google",
  });
});

test("Microsoft sign-in without redirect_uri names the previous page", () => {
  const login = ssoLogin(
    "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=x",
    "https://app.asana.com/-/login",
    ADA,
  );
  assert.equal(login.app.domain, "app.asana.com");
  assert.equal(login.login_method, "oidc_microsoft");
  assert.equal(login.identity_provider, "microsoft");
});

test("SAML request names the identity provider host", () => {
  const login = ssoLogin(
    "https://northwind.okta.com/app/slack/sso/saml?SAMLRequest=abc",
    "https://northwind.slack.com/",
    ADA,
  );
  assert.equal(login.login_method, "sso_saml");
  assert.equal(login.identity_provider, "northwind.okta.com");
  assert.equal(login.app.domain, "northwind.slack.com");
});

test("other navigations are no login", () => {
  for (const [url, previous] of [
    ["https://www.figma.com/files", "https://www.figma.com/login"],
    ["https://accounts.google.com/ServiceLogin", "https://mail.google.com/"],
    ["not a url", null],
    ["https://accounts.google.com/o/oauth2/v2/auth?client_id=x", null],
  ]) {
    assert.equal(ssoLogin(url, previous, ADA), null, url);
  }
});
