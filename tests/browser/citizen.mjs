// Drives Debian's headless Chromium (playwright-core, no bundled browser) through the citizen pages of a
// running `serve`: tests/citizen_browser.rs starts the service, issues a certificate and runs this script.
//
//   node citizen.mjs <base-url> <token> <artefact-dir> <forged-hc1>
//
// Prints one JSON object on stdout: what the Rust test asserts. Screenshots and downloads go to
// <artefact-dir>. The axe-core source is evaluated through the DevTools protocol, which the pages'
// Content-Security-Policy does not govern, so the pages themselves keep their strict policy.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const [base, token, dir, forged] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const result = { cspViolations: [], foreignRequests: [], consoleErrors: [], axe: {}, downloads: {} };
try {
  // A phone-sized screen.
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    acceptDownloads: true,
  });
  const page = await context.newPage();
  const origin = new URL(base).origin;
  page.on("request", (r) => {
    if (new URL(r.url()).origin !== origin) result.foreignRequests.push(r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error") result.consoleErrors.push(m.text());
    if (m.text().includes("Content Security Policy")) result.cspViolations.push(m.text());
  });

  async function audit(name) {
    await page.evaluate(axeSource);
    const report = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    result.axe[name] = report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
  }

  // The holder's page: summary, QR codes, downloads.
  const response = await page.goto(`${base}/certificates/${token}`);
  result.pageStatus = response.status();
  result.pageHeaders = response.headers();
  result.title = await page.title();
  result.summary = await page.locator("dl").innerText();
  result.developmentKey = await page.locator("#development-key").innerText().catch(() => null);
  result.images = await page.$$eval("figure img", (imgs) => imgs.map((i) => ({ loaded: i.complete && i.naturalWidth > 0, alt: i.alt })));
  await page.screenshot({ path: path.join(dir, "certificate-page.png"), fullPage: true });
  await audit("certificate");

  for (const [selector, file] of [["#download-pdf", "certificate.pdf"], ["a[download='ddcc-qr.png']", "ddcc-qr.png"]]) {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(selector)]);
    const saved = path.join(dir, file);
    await download.saveAs(saved);
    result.downloads[file] = saved;
  }

  // The check page: upload the QR image just downloaded, read the verdict.
  await page.click("text=Check a certificate");
  await page.waitForURL(/\/check$/);
  await page.setInputFiles("#file", result.downloads["ddcc-qr.png"]);
  await page.click("button[type=submit]");
  await page.waitForSelector("#verdict.valid, #verdict.invalid");
  result.uploadVerdict = await page.locator("#verdict").innerText();
  await page.screenshot({ path: path.join(dir, "check-valid.png"), fullPage: true });
  await audit("check");

  // Pasted text of a forged certificate.
  await page.setInputFiles("#file", []);
  await page.fill("#hc1", forged);
  await page.click("button[type=submit]");
  await page.waitForFunction(() => !document.querySelector("#verdict").textContent.includes("Checking"));
  await page.waitForSelector("#verdict.invalid");
  result.pasteVerdict = await page.locator("#verdict").innerText();
  await page.screenshot({ path: path.join(dir, "check-forged.png"), fullPage: true });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
