// Accessibility and language: the whole flow by keyboard, labels and live status, French
// and German texts with amounts formatted per locale, light and dark themes.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { checkoutFrame, launchBrowser, openCheckout, recordingPage, shot, startServer } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Spaces as a sighted reader sees them: no-break and narrow no-break spaces become plain. */
const plain = (s) => s.replace(/[\u00a0\u202f]/g, " ").trim();
const focused = (frame) => frame.evaluate(() => document.activeElement?.id || document.activeElement?.tagName);

test("the whole flow works with the keyboard alone", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.waitForSelector("#start");

  // From the top of the shop page, Tab until the pay button inside the iframe has focus.
  await page.evaluate(() => document.activeElement?.blur());
  let reached = false;
  for (let i = 0; i < 25 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = (await focused(frame)) === "start";
  }
  assert.ok(reached, "Tab reaches the widget's button");
  await page.keyboard.press("Enter");
  await frame.waitForSelector("#code-0");
  assert.equal(await focused(frame), "code-0", "focus moves into the code field");
  assert.equal(await frame.getAttribute("label[for=code-0]", "for"), "code-0");
  assert.equal(await frame.locator("#code-0").getAttribute("aria-describedby"), "msg-0");

  await page.keyboard.type(code.toLowerCase().replace(/-/g, " "));
  await frame.waitForSelector("#msg-0.ok");
  assert.match(await frame.textContent("#status"), /Balance €150\.00/, "the live region announces the balance");
  assert.equal(await frame.getAttribute("#status", "aria-live"), "polite");

  // Tab past the remember option to the pay button, and press Enter.
  let onPay = false;
  for (let i = 0; i < 5 && !onPay; i++) {
    await page.keyboard.press("Tab");
    onPay = (await focused(frame)) === "pay";
  }
  assert.ok(onPay, "Tab reaches the pay button");
  await page.keyboard.press("Enter");
  await frame.waitForSelector("#done");
  assert.equal(await focused(frame), "done", "focus moves to the result");
  assert.match(await frame.textContent("#status"), /Paid €99\.00/);
  assert.equal(seen.events.filter((e) => e.type === "success").length, 1);
  await page.waitForURL(/\/demo\/confirmation\//);
  assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");
  await context.close();
});

test("Enter in the code field pays once the vouchers cover the amount", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.focus("#start");
  await page.keyboard.press("Enter");
  await frame.waitForSelector("#code-0");
  await page.keyboard.type(code);
  await frame.waitForSelector("#msg-0.ok");
  await page.keyboard.press("Enter");
  await frame.waitForSelector("#done");
  await context.close();
});

test("French: French text and 99,00 €", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server, { lang: "fr" });
  const frame = await checkoutFrame(page);
  await frame.waitForSelector("#start");
  assert.equal(await frame.getAttribute("html", "lang"), "fr");
  assert.equal(plain(await frame.textContent("#start")), "Payer 99,00 € avec un bon d’achat");
  await frame.click("#start");
  assert.equal(plain(await frame.textContent("label[for=code-0]")), "Code du bon");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  assert.equal(plain(await frame.textContent("#msg-0")), "Solde 150,00 €");
  assert.equal(plain(await frame.textContent("#pay")), "Payer 99,00 €");
  await shot(page.locator("iframe"), "10-french");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  assert.match(plain(await frame.textContent("#done")), /99,00 € payés/);
  await context.close();
});

test("German, and the browser's language when the tag names none", async () => {
  const context = await browser.newContext({ locale: "de-DE" });
  const { page } = await recordingPage(context);
  await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.waitForSelector("#start");
  assert.equal(plain(await frame.textContent("#start")), "99,00 € mit Gutschein bezahlen");
  await context.close();
});

test("dark theme", async () => {
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server, { theme: "dark" });
  const frame = await checkoutFrame(page);
  await frame.waitForSelector("#start");
  assert.equal(await frame.getAttribute("html", "class"), "dark");
  const background = await frame.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(background, "rgb(27, 27, 31)");
  await frame.click("#start");
  await shot(page.locator("iframe"), "11-dark");
  await context.close();
});
