// "Check a certificate": sends a QR image, a PDF or pasted HC1 text to POST /ddcc/verify and shows the
// verdict. Same origin only (the page's Content-Security-Policy allows nothing else); no data is kept.
"use strict";
(function () {
  const form = document.getElementById("check");
  const file = document.getElementById("file");
  const text = document.getElementById("hc1");
  const out = document.getElementById("verdict");
  const verifyUrl = form.getAttribute("action");

  function row(list, label, value) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }

  function day(seconds) {
    return typeof seconds === "number" ? new Date(seconds * 1000).toISOString().slice(0, 10) : "–";
  }

  function show(report) {
    out.replaceChildren();
    out.className = "verdict " + (report.valid && !report.revoked ? "valid" : "invalid");
    const h = document.createElement("h2");
    h.textContent = report.revoked ? "Revoked" : report.valid ? "Valid certificate" : "Not valid";
    const list = document.createElement("dl");
    if (!report.valid && report.error) {
      row(list, "Reason", report.error.message + " (" + report.error.stage + ")");
    }
    row(list, "Issuing country", report.iss || "–");
    const ddcc = report.payloads && report.payloads["3"];
    const issuer = ddcc && ddcc.certificate && ddcc.certificate.issuer;
    if (issuer) {
      row(list, "Issuer", (issuer.identifier && issuer.identifier.value) || issuer.reference || "–");
    }
    row(list, "Revoked", report.revoked ? "yes" : "no");
    row(list, "Issued", day(report.iat));
    row(list, "Expires", day(report.exp));
    row(list, "Signing key (kid)", report.kid || "–");
    out.append(h, list);
    h.tabIndex = -1;
    h.focus();
  }

  function problem(message) {
    out.replaceChildren();
    out.className = "verdict invalid";
    const h = document.createElement("h2");
    h.textContent = "Could not check";
    const p = document.createElement("p");
    p.textContent = message;
    out.append(h, p);
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    let body;
    let type;
    if (file.files.length > 0) {
      body = file.files[0];
      type = body.type === "application/pdf" ? "application/pdf" : "image/png";
    } else if (text.value.trim() !== "") {
      body = text.value.trim();
      type = "text/plain";
    } else {
      problem("Choose a QR code image or PDF, or paste the text of a QR code (it starts with HC1:).");
      return;
    }
    out.className = "verdict";
    out.textContent = "Checking…";
    try {
      const answer = await fetch(verifyUrl, { method: "POST", headers: { "Content-Type": type }, body: body });
      const json = await answer.json();
      if (answer.ok) {
        show(json);
      } else {
        const issue = json.issue && json.issue[0];
        problem((issue && issue.diagnostics) || "The service answered " + answer.status + ".");
      }
    } catch (e) {
      problem("The service could not be reached.");
    }
  });
})();
