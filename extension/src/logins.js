// Detects a login or sign-up with a password on any site: a submitted form with a password
// field. The password itself is never read.

(() => {
  const EMAIL = /^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$/;
  const SIGNUP = /sign[\s-]?up|register|create (an |your )?account|join/i;

  function accountEmail(form) {
    const fields = form.querySelectorAll(
      'input[type="email"], input[autocomplete="username"], input[autocomplete="email"], input[name*="email" i], input[name*="user" i], input[name*="login" i]',
    );
    for (const field of fields) {
      const value = field.value.trim();
      if (EMAIL.test(value)) {
        return value.toLowerCase();
      }
    }
    return null;
  }

  function isSignup(form) {
    const passwords = form.querySelectorAll('input[type="password"]');
    return (
      passwords.length > 1 ||
      form.querySelector('input[autocomplete="new-password"]') !== null ||
      SIGNUP.test(`${location.pathname} ${form.getAttribute("action") ?? ""} ${form.textContent}`)
    );
  }

  // Titles are cut to 100 characters, within the API's 200, with white space collapsed.
  function appName() {
    const title = document.title.replace(/\s+/g, " ").trim();
    return (title || location.hostname).slice(0, 100);
  }

  document.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.querySelector('input[type="password"]')) {
        return;
      }
      chrome.runtime.sendMessage({
        type: "login",
        eventType: isSignup(form) ? "signup" : "login",
        app: { domain: location.hostname, name: appName() },
        accountEmail: accountEmail(form),
        loginMethod: "password",
      });
    },
    true,
  );
})();
