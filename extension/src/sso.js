// Recognises a single sign-on: the browser leaving an app for an identity provider.

/**
 * Returns the login event for a navigation to `url`, or null. `previous` is the page the tab
 * showed before, and `email` the work identity, which single sign-on uses.
 */
export function ssoLogin(url, previous, email) {
  let target;
  try {
    target = new URL(url);
  } catch {
    return null;
  }
  const host = target.hostname;
  let method = null;
  if (host === "accounts.google.com" && /\/o\/oauth2\/|\/signin\/oauth/.test(target.pathname)) {
    method = "oidc_google";
  } else if (host === "login.microsoftonline.com" && /\/oauth2\//.test(target.pathname)) {
    method = "oidc_microsoft";
  } else if (target.searchParams.has("SAMLRequest")) {
    method = "sso_saml";
  }
  if (!method) {
    return null;
  }

  // The app is where the identity provider sends the browser back, or else the page before.
  const appDomain =
    hostOf(target.searchParams.get("redirect_uri")) ?? hostOf(previous);
  if (!appDomain || appDomain === host) {
    return null;
  }
  return {
    type: "login",
    app: { domain: appDomain, name: appDomain },
    account_email: email ?? null,
    login_method: method,
    identity_provider: { oidc_google: "google", oidc_microsoft: "microsoft" }[method] ?? host,
  };
}

function hostOf(url) {
  if (!url) {
    return null;
  }
  try {
    return new URL(url).hostname || null;
  } catch {
    return null;
  }
}
