// The checkout end to end on the demo shop, in headless Chromium against the real server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  checkoutFrame,
  launchBrowser,
  openCheckout,
  recordingPage,
  shot,
  startServer,
  withTypo,
} from "./harness.mjs";

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

/** Every form a code could take in a string: as issued, without dashes, lower case. */
function leaks(text, code) {
  const bare = code.replace(/-/g, "");
  return [code, bare, code.toLowerCase(), bare.toLowerCase(), bare.slice(0, 12)].some((form) =>
    text.includes(form),
  );
}

describe("checkout on the demo shop", () => {
  test("typo caught without a request, balance shown, paid, verified by the shop's server, code never seen by the page", async () => {
    const [code] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    const apiCalls = [];
    page.on("request", (r) => {
      if (r.url().includes("/api/")) apiCalls.push(r.url());
    });
    const orderId = await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.waitForSelector("#start");
    await shot(page.locator("iframe"), "01-ready");
    assert.match(await frame.textContent("#start"), /Pay €99\.00 with a voucher/);

    await frame.click("#start");
    const input = frame.locator("#code-0");
    await input.pressSequentially(withTypo(code).replace(/-/g, "").toLowerCase());
    assert.equal(await input.inputValue(), withTypo(code), "formatted as typed");
    await frame.waitForSelector("#msg-0.err");
    assert.match(await frame.textContent("#msg-0"), /typo/);
    assert.equal(await input.getAttribute("aria-invalid"), "true");
    await shot(page.locator("iframe"), "02-typo");
    assert.deepEqual(apiCalls, [], "a typo is caught locally: no request at all");

    await input.press("Backspace");
    await input.pressSequentially(code.slice(-1));
    await frame.waitForSelector("#msg-0.ok");
    assert.match(await frame.textContent("#msg-0"), /Balance €150\.00/);
    assert.equal(apiCalls.length, 1);
    assert.match(apiCalls[0], /\/api\/vouchers\/check$/);
    await shot(page.locator("iframe"), "03-balance");

    await frame.click("#pay");
    await frame.waitForSelector("#done");
    assert.match(await frame.textContent("#done"), /Paid €99\.00/);
    assert.match(await frame.textContent("#done"), /€51\.00/);
    await shot(page.locator("iframe"), "04-paid");

    await page.waitForURL(/\/demo\/confirmation\//);
    await page.waitForSelector("#verdict");
    assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");
    await shot(page, "05-confirmation-verified");

    const successEvents = seen.events.filter((e) => e.type === "success");
    assert.equal(successEvents.length, 1);
    const detail = JSON.parse(successEvents[0].detail);
    assert.deepEqual(Object.keys(detail).sort(), ["amount", "currency", "order_id", "transaction_id"]);
    assert.equal(detail.order_id, orderId);
    assert.equal(detail.amount, "99.00");
    assert.equal(detail.currency, "EUR");
    assert.match(detail.transaction_id, /^txn_/);
    assert.equal(await page.textContent("#transaction-id"), detail.transaction_id);

    // The merchant page's point of view: nothing it could read carries the code.
    for (const e of seen.events) assert.ok(!leaks(e.detail, code), `event ${e.type} leaks the code`);
    for (const m of seen.messages) assert.ok(!leaks(m.data, code), "a message leaks the code");
    assert.ok(seen.messages.length > 0, "the page did receive the widget's messages");
    await context.close();
  });

  test("the shop page's scripts cannot reach into the iframe", async () => {
    const [code] = await server.issue("100.00");
    const context = await browser.newContext();
    const { page } = await recordingPage(context);
    await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#msg-0.ok");
    // While the code sits in the field, the shop's own JavaScript looks everywhere it can.
    const view = await page.evaluate(() => {
      const iframe = document.querySelector("iframe");
      let inner = "blocked";
      try {
        inner = iframe.contentDocument ? iframe.contentDocument.documentElement.outerHTML : "null";
      } catch (e) {
        inner = "threw " + e.name;
      }
      let storage = "";
      try {
        storage = JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage });
      } catch {
        storage = "";
      }
      return { dom: document.documentElement.outerHTML, inner, storage, cookies: document.cookie, src: iframe.src };
    });
    assert.equal(view.inner, "null", "cross-origin: the shop gets no document");
    for (const [where, text] of Object.entries(view)) {
      assert.ok(!leaks(text, code), `the code is visible to the shop page in ${where}`);
    }
    await context.close();
  });

  test("two vouchers together pay what one cannot", async () => {
    const [small] = await server.issue("50.00");
    const [other] = await server.issue("60.00");
    const context = await browser.newContext();
    const { page } = await recordingPage(context);
    const orderId = await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(small);
    await frame.waitForSelector("#msg-0.ok");
    assert.match(await frame.textContent("#summary"), /Still to pay: €49\.00/);
    assert.ok(await frame.locator("#pay").isDisabled());
    await shot(page.locator("iframe"), "06-partial");
    await frame.click("#add");
    assert.equal(await frame.evaluate(() => document.activeElement.id), "code-1", "focus moves to the new field");
    await frame.locator("#code-1").fill(other);
    await frame.waitForSelector("#msg-1.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    const done = await frame.textContent("#done");
    assert.match(done, /Paid €99\.00/);
    assert.match(done, /€0\.00/);
    assert.match(done, /€11\.00/);
    await page.waitForURL(/\/demo\/confirmation\//);
    assert.equal(await page.getAttribute("#verdict", "data-verified"), "true");
    assert.equal(server.transactionsFor(orderId), 1);
    await context.close();
  });

  test("a declined voucher is explained and the shopper can try another", async () => {
    const [blocked] = await server.issue("200.00");
    await server.block(blocked);
    const [later] = await server.issue("200.00");
    const [good] = await server.issue("200.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(blocked);
    await frame.waitForSelector("#msg-0.err");
    // A blocked code reads as any code that cannot be used: the uniform decline.
    assert.match(await frame.textContent("#msg-0"), /cannot be used/);
    assert.ok(await frame.locator("#pay").isDisabled());
    await shot(page.locator("iframe"), "07-declined");

    // Fine at the balance check, blocked before paying: the payment itself is declined (402).
    await frame.locator("#code-0").fill(later);
    await frame.waitForSelector("#msg-0.ok");
    await server.block(later);
    await frame.click("#pay");
    await frame.waitForSelector("#msg-0.err");
    assert.match(await frame.textContent("#msg-0"), /cannot be used/);
    assert.equal(await frame.textContent("#status"), "This voucher cannot be used.", "announced, not Paying…");
    assert.equal(await frame.evaluate(() => document.activeElement.id), "code-0");
    const errors = seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
    assert.equal(errors.at(-1).code, "voucher_declined");

    await frame.locator("#code-0").fill(good);
    await frame.waitForSelector("#msg-0.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    await context.close();
  });

  test("a double click on Pay makes one transaction", async () => {
    const [code] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    const payments = [];
    page.on("request", (r) => {
      if (r.url().includes("/api/process-payment")) payments.push(r.headers()["idempotency-key"]);
    });
    const orderId = await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#msg-0.ok");
    await frame.dblclick("#pay");
    // And a script-level burst, faster than any hand.
    await frame.evaluate(() => {
      const b = document.getElementById("pay");
      if (b) {
        b.click();
        b.click();
      }
    });
    await frame.waitForSelector("#done");
    await page.waitForURL(/\/demo\/confirmation\//);
    assert.equal(server.transactionsFor(orderId), 1);
    assert.equal(seen.events.filter((e) => e.type === "success").length, 1);
    assert.ok(payments.length >= 1);
    assert.equal(new Set(payments).size, 1, "every request of the attempt carries the same Idempotency-Key");
    await context.close();
  });

  test("a payment whose answer is lost is retried with the same key and charged once", async () => {
    const [code] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    const keys = [];
    const replayed = [];
    page.on("response", (r) => {
      if (r.url().includes("/api/process-payment")) replayed.push(r.headers()["idempotent-replayed"] ?? "");
    });
    const orderId = await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#msg-0.ok");
    // The request reaches the server and is processed; its answer never reaches the browser.
    await page.route("**/api/process-payment/", async (route) => {
      keys.push(route.request().headers()["idempotency-key"]);
      await route.fetch();
      await route.abort("connectionreset");
    });
    await frame.click("#pay");
    await frame.waitForSelector("#fail");
    assert.match(await frame.textContent("#fail"), /connection was interrupted/);
    assert.equal(await frame.textContent("#status"), await frame.textContent("#fail"), "announced, not Paying…");
    assert.equal(await frame.evaluate(() => document.activeElement.id), "fail");
    await shot(page.locator("iframe"), "13-connection-lost");
    assert.equal(server.transactionsFor(orderId), 1, "the server did charge");
    await page.unroute("**/api/process-payment/");
    page.on("request", (r) => {
      if (r.url().includes("/api/process-payment")) keys.push(r.headers()["idempotency-key"]);
    });
    await frame.click("#retry");
    await frame.waitForSelector("#done");
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1], "the retry carries the attempt's Idempotency-Key");
    assert.deepEqual(replayed, ["true"], "the retry is answered from the first request's record");
    assert.equal(server.transactionsFor(orderId), 1, "charged once");
    assert.equal(seen.events.filter((e) => e.type === "success").length, 1);
    await context.close();
  });

  test("offline: a clear message, and paying works once back online", async () => {
    const [code] = await server.issue("150.00");
    const context = await browser.newContext();
    const { page } = await recordingPage(context);
    const orderId = await openCheckout(page, server);
    const frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#msg-0.ok");
    await context.setOffline(true);
    await frame.click("#pay");
    await frame.waitForSelector("#fail");
    assert.match(await frame.textContent("#fail"), /offline/);
    assert.equal(server.transactionsFor(orderId), 0);
    await context.setOffline(false);
    await frame.click("#retry");
    await frame.waitForSelector("#done");
    assert.equal(server.transactionsFor(orderId), 1);
    await context.close();
  });

  test("paying an order that is already paid shows it as paid, with the first transaction", async () => {
    const [first, second] = await server.issue("150.00", 2);
    const context = await browser.newContext();
    const { page, seen } = await recordingPage(context);
    const orderId = await openCheckout(page, server);
    const checkoutUrl = page.url();
    let frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(first);
    await frame.waitForSelector("#msg-0.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    await page.waitForURL(/\/demo\/confirmation\//);
    const paid = JSON.parse(seen.events.find((e) => e.type === "success").detail);

    // Back to the same checkout (another tab, the back button) and pay again.
    await page.goto(checkoutUrl);
    frame = await checkoutFrame(page);
    await frame.click("#start");
    await frame.locator("#code-0").fill(second);
    await frame.waitForSelector("#msg-0.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    assert.match(await frame.textContent("#done"), /already been paid/);
    const successes = seen.events.filter((e) => e.type === "success").map((e) => JSON.parse(e.detail));
    assert.equal(successes.length, 2);
    assert.equal(successes[1].transaction_id, paid.transaction_id);
    assert.equal(server.transactionsFor(orderId), 1);
    const balance = await server.api("POST", "/api/vouchers/check", server.merchant.pk, { code: second });
    assert.equal(balance.body.balance, "150.00", "the second voucher was not charged");
    await context.close();
  });
});
