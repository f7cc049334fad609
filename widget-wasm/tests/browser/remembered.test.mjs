// Returning shoppers: a voucher remembered on this device pays the next order in one click,
// and forgetting it removes the button and revokes the token.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
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

function revokedTokens() {
  const out = execFileSync("psql", [server.env.DATABASE_URL, "-Atc", "SELECT count(*) FROM remembered_vouchers WHERE revoked_at IS NOT NULL"], { encoding: "utf8" });
  return Number(out.trim());
}

test("the second order pays in one click with the remembered voucher; after forgetting, the button is gone", async () => {
  const [code] = await server.issue("300.00");
  const last4 = code.slice(-4);
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);

  // First order: typed, with "remember on this device".
  await openCheckout(page, server);
  let frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.check("#remember");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  await page.waitForURL(/\/demo\/confirmation\//);
  assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");

  // Second order: one button, with the voucher's last four symbols and its balance.
  const second = await openCheckout(page, server);
  frame = await checkoutFrame(page);
  await frame.waitForSelector("#pay-saved");
  assert.equal((await frame.textContent("#pay-saved")).trim(), `Pay €99.00 with voucher ••••${last4}`);
  assert.match(await frame.textContent("#saved-balance"), /Balance €201\.00/);
  await shot(page.locator("iframe"), "08-one-click");
  await frame.click("#pay-saved");
  await frame.waitForSelector("#done");
  assert.match(await frame.textContent("#done"), /€102\.00/);
  await page.waitForURL(/\/demo\/confirmation\//);
  assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");
  assert.equal(server.transactionsFor(second), 1);

  // Third order: still offered, then forgotten.
  await openCheckout(page, server);
  frame = await checkoutFrame(page);
  await frame.waitForSelector("#pay-saved");
  assert.match(await frame.textContent("#saved-balance"), /€102\.00/);
  await frame.click("#forget");
  await frame.waitForSelector("#start");
  assert.equal(await frame.locator("#pay-saved").count(), 0);
  assert.match(await frame.textContent("#view"), /removed from this device/);
  await expectEventually(() => revokedTokens() === 1, "the token is revoked on the server");

  // And it stays gone on the next visit.
  await openCheckout(page, server);
  frame = await checkoutFrame(page);
  await frame.waitForSelector("#start");
  assert.equal(await frame.locator("#pay-saved").count(), 0);

  // The shop page never saw the token or the code.
  const everything = JSON.stringify(seen);
  assert.ok(!everything.includes("vt_"), "a token reached the shop page");
  assert.ok(!everything.includes(code.replace(/-/g, "").slice(0, 12)), "the code reached the shop page");
  await context.close();
});

test("a remembered voucher revoked elsewhere is dropped and the shopper types a code", async () => {
  const [code] = await server.issue("300.00");
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server);
  let frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.check("#remember");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  await page.waitForURL(/\/demo\/confirmation\//);

  // Support revokes every token of the voucher (a lost phone).
  const r = await server.api("POST", "/api/admin/vouchers/revoke-remembered", "admin_browser_token_0123456789abcdef", { code });
  assert.equal(r.status, 200);
  assert.equal(r.body.revoked, 1);

  await openCheckout(page, server);
  frame = await checkoutFrame(page);
  // The cached button may show first; the balance refresh replaces it with the form button.
  await frame.waitForSelector("#start", { timeout: 10_000 });
  assert.equal(await frame.locator("#pay-saved").count(), 0);
  await context.close();
});

async function expectEventually(check, what) {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(what);
}
