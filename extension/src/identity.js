// Finds the signed-in work email in an open Gmail or Outlook tab and sends it to the service
// worker.

(() => {
  const EMAIL = /[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;
  const source = location.hostname === "mail.google.com" ? "gmail" : "outlook";
  let reported = null;

  function findEmail() {
    // Gmail's title is "Inbox (3) - ada@example.com - Gmail"; Outlook's account manager
    // shows the address in #mectrl_currentAccount_secondary.
    const candidates = [
      document.querySelector("#mectrl_currentAccount_secondary")?.textContent,
      document.title,
      document.querySelector("[data-email]")?.getAttribute("data-email"),
    ];
    for (const text of candidates) {
      const match = text?.match(EMAIL);
      if (match) {
        return match[0].toLowerCase();
      }
    }
    return null;
  }

  function report() {
    const email = findEmail();
    if (email && email !== reported) {
      reported = email;
      chrome.runtime.sendMessage({ type: "identity", email, source });
    }
  }

  report();
  // Both apps load the account after the page, and switch accounts without reloading.
  new MutationObserver(report).observe(document.documentElement, {
    subtree: true,
    childList: true,
    characterData: true,
  });
})();
