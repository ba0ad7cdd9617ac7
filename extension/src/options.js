// The options page: shows whether a managed policy or a self-enrolment configures the
// extension, and lets a person enrol with the link from their email.

const describe = {
  managed_policy: "Configured by your organisation's managed policy",
  self_enrolment: "Configured by your self-enrolment",
  none: "Not configured yet: enrol with the link from your email",
};

async function show() {
  const status = await chrome.runtime.sendMessage({ type: "status" });
  const rows = [
    ["Configuration", describe[status.configSource] ?? status.configSource],
    ["API URL", status.apiUrl],
    ["Work identity", status.identity ? `${status.identity.email} (${status.identity.source})` : "not seen yet"],
    ["Events waiting", String(status.queued)],
  ];
  const list = document.getElementById("status");
  list.replaceChildren(
    ...rows.flatMap(([name, value]) => {
      const term = document.createElement("dt");
      term.textContent = name;
      const detail = document.createElement("dd");
      detail.textContent = value;
      return [term, detail];
    }),
  );
  list.dataset.configSource = status.configSource;
  document.getElementById("api-url").value = status.apiUrl ?? "";
  const managed = status.configSource === "managed_policy";
  for (const form of document.querySelectorAll("form")) {
    form.hidden = managed;
  }
}

document.getElementById("api").addEventListener("submit", async (event) => {
  event.preventDefault();
  const apiUrl = document.getElementById("api-url").value.trim();
  await chrome.runtime.sendMessage({ type: "setApiUrl", apiUrl });
  document.getElementById("result").textContent = "Saved";
  await show();
});

document.getElementById("enrol").addEventListener("submit", async (event) => {
  event.preventDefault();
  let token = null;
  try {
    token = new URL(document.getElementById("enrolment-link").value).searchParams.get("token");
  } catch {
    token = null;
  }
  const result = token
    ? await chrome.runtime.sendMessage({ type: "redeem", token })
    : { ok: false, detail: "the link carries no token" };
  document.getElementById("result").textContent = result.ok
    ? `Enrolled: ${result.detail}`
    : `Enrolment failed: ${result.detail ?? `HTTP ${result.status}`}`;
  await show();
});

show();
