// Signed amounts: a shop that requires signatures gets altered or unsigned amounts refused.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { checkoutFrame, launchBrowser, openCheckout, recordingPage, shot, startServer } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const r = await server.settings({ require_signature: true });
  assert.equal(r.status, 200);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Opens the demo checkout with its script tag altered before the loader runs, as a shopper
 * editing the page or a script injected into it would: `alter(dataset)` changes the tag's
 * data attributes as soon as the parser inserts it.
 */
async function alteredCheckout(page, alteration) {
  await page.addInitScript((alteration) => {
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.tagName === "SCRIPT" && node.dataset && node.dataset.apiKey) {
            if (alteration.amount) node.dataset.amount = alteration.amount;
            if (alteration.unsigned) delete node.dataset.signature;
          }
        }
      }
    }).observe(document, { childList: true, subtree: true });
  }, alteration);
  return openCheckout(page, server);
}

test("a tampered data-amount is refused and nothing is charged", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  const orderId = await alteredCheckout(page, { amount: "1.00" });
  const frame = await checkoutFrame(page);
  assert.match(await frame.textContent("#start"), /Pay €1\.00/);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.click("#pay");
  await frame.waitForSelector("#fatal");
  assert.match(await frame.textContent("#fatal"), /could not be verified/);
  assert.equal(
    await frame.textContent("#status"),
    await frame.textContent("#fatal"),
    "the live region announces the refusal instead of still saying Paying…",
  );
  await shot(page.locator("iframe"), "09-amount-not-verified");
  const errors = seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
  assert.equal(errors.at(-1).code, "signature_invalid");
  assert.equal(seen.events.filter((e) => e.type === "success").length, 0);
  assert.equal(server.transactionsFor(orderId), 0);
  await context.close();
});

test("an unsigned tag is refused at a shop that requires signatures", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page, seen } = await recordingPage(context);
  const orderId = await alteredCheckout(page, { unsigned: true });
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.click("#pay");
  await frame.waitForSelector("#fatal");
  assert.equal(await frame.textContent("#status"), await frame.textContent("#fatal"));
  const errors = seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
  assert.equal(errors.at(-1).code, "signature_required");
  assert.equal(server.transactionsFor(orderId), 0);
  await context.close();
});

test("the shop's own signed tag pays", async () => {
  const [code] = await server.issue("150.00");
  const context = await browser.newContext();
  const { page } = await recordingPage(context);
  await openCheckout(page, server);
  const frame = await checkoutFrame(page);
  await frame.click("#start");
  await frame.locator("#code-0").fill(code);
  await frame.waitForSelector("#msg-0.ok");
  await frame.click("#pay");
  await frame.waitForSelector("#done");
  await page.waitForURL(/\/demo\/confirmation\//);
  assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");
  await context.close();
});
