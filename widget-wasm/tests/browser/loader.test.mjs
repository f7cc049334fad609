// The loader on merchant pages of its own: bad tags, several widgets, a strict CSP.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, recordingPage, shot, startMerchantSite, startServer } from "./harness.mjs";

let server;
let browser;
let site;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  site = await startMerchantSite();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.stop();
});

/** Serves `body` as a page of the merchant's site, under a CSP as strict as a careful shop's. */
async function merchantPage(context, body, pathname) {
  const { page, seen } = await recordingPage(context);
  const csp = `default-src 'self'; script-src ${server.provider}; frame-src ${server.provider}; style-src 'self'`;
  const url = site.set(pathname, `<!doctype html><html><body><h1>Shop</h1>${body}</body></html>`, {
    "content-security-policy": csp,
  });
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  return { page, seen, violations, url };
}

function tag(attrs) {
  const all = { "data-api-key": server.merchant.pk, "data-amount": "25.00", "data-order-id": "ORD-1", ...attrs };
  const text = Object.entries(all)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}="${v}"`)
    .join(" ");
  return `<script src="${server.provider}/widget.js" ${text}></script>`;
}

// Opens the page of a tag the iframe refuses: the frame shows its notice where the form
// would be, and the page hears superpayment:error; returns the error events' details.
async function frameRefusal(page, seen, url) {
  await page.goto(url);
  const frame = page.frameLocator("iframe");
  await frame.locator("[role=alert]").waitFor();
  assert.match(await frame.locator("[role=alert]").textContent(), /not set up correctly/);
  for (let i = 0; i < 50 && !seen.events.some((e) => e.type === "error"); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
}

test("a bad key shows a visible message and a console error, never a silent blank", async () => {
  const context = await browser.newContext();
  // Only the key is checked by the loader itself: a secret key must never reach the iframe URL.
  const cases = [
    [{ "data-api-key": server.merchant.sk }, /secret key/],
    [{ "data-api-key": "pk_test_short" }, /publishable key/],
    [{ "data-api-key": null }, /publishable key/],
  ];
  for (const [attrs, expected] of cases) {
    const { page, seen, url } = await merchantPage(context, tag(attrs), "/bad.html");
    await page.goto(url);
    const alert = page.locator("[role=alert]");
    await alert.waitFor();
    assert.match(await alert.textContent(), expected);
    assert.equal(await page.locator("iframe").count(), 0);
    assert.ok(seen.console.some((l) => l.startsWith("error: SuperPayment:")), "console error");
    const errors = seen.events.filter((e) => e.type === "error").map((e) => JSON.parse(e.detail));
    assert.equal(errors[0]?.code, "invalid_tag");
    assert.match(errors[0]?.message, expected);
    if (attrs["data-api-key"] === server.merchant.sk) await shot(page, "12-bad-tag");
    await page.close();
  }
  await context.close();
});

test("a malformed amount, currency or order id is refused inside the frame as invalid_tag", async () => {
  const context = await browser.newContext();
  // The iframe checks these with superpayment-core's rules: the page gets invalid_tag, the
  // frame shows where the form would be that the checkout is not set up correctly.
  const cases = [
    [{ "data-amount": "-5" }, /data-amount/],
    [{ "data-amount": null }, /data-amount/],
    [{ "data-amount": "0.00" }, /data-amount/],
    [{ "data-order-id": "order 1" }, /data-order-id/],
    [{ "data-order-id": null }, /data-order-id/],
    [{ "data-order-id": "x".repeat(65) }, /data-order-id/],
    [{ "data-currency": "eur" }, /data-currency/],
    // A malformed attribute wins over a rule of the currency, as when the loader checked it.
    [{ "data-currency": "JPY", "data-amount": "10.50", "data-order-id": "a b" }, /data-order-id/],
  ];
  for (const [attrs, expected] of cases) {
    const { page, seen, url } = await merchantPage(context, tag(attrs), "/bad-attribute.html");
    const errors = await frameRefusal(page, seen, url);
    assert.deepEqual(errors.map((e) => e.code), ["invalid_tag"], JSON.stringify(attrs));
    assert.match(errors[0].message, expected);
    assert.equal(await page.locator("[role=alert]").count(), 0, "the page itself is left alone");
    assert.ok(seen.console.some((l) => l.startsWith("error: SuperPayment: data-")), "console error");
    await page.close();
  }
  await context.close();
});

test("a well-formed amount or currency the shared rules refuse has its precise code", async () => {
  const context = await browser.newContext();
  const cases = [
    // JPY has no decimals: only the shared core rules inside the iframe know that.
    [{ "data-currency": "JPY", "data-amount": "10.50" }, "invalid_amount"],
    [{ "data-currency": "XYZ" }, "invalid_currency"],
    // Keys never hold i, l, o or u; the loader's pattern is looser than the rules.
    [{ "data-api-key": "pk_test_" + "u".repeat(32) }, "invalid_api_key"],
  ];
  for (const [attrs, code] of cases) {
    const { page, seen, url } = await merchantPage(context, tag(attrs), `/${code}.html`);
    const errors = await frameRefusal(page, seen, url);
    assert.deepEqual(errors.map((e) => e.code), [code]);
    await page.close();
  }
  await context.close();
});

test("several widgets on one page work independently, under a strict CSP, with one global", async () => {
  const [a, b] = await server.issue("100.00", 2);
  const context = await browser.newContext();
  const body =
    `<div id="one">${tag({ "data-order-id": "MULTI-1", "data-amount": "10.00" })}</div>` +
    `<div id="two">${tag({ "data-order-id": "MULTI-2", "data-amount": "20.00", "data-locale": "de" })}</div>`;
  const { page, seen, violations, url } = await merchantPage(context, body, "/multi.html");
  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("iframe").length === 2);
  for (let i = 0; i < 100 && seen.events.filter((e) => e.type === "ready").length < 2; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(seen.events.filter((e) => e.type === "ready").length, 2);
  await page.evaluate(() => {
    window.__hits = [];
    for (const id of ["one", "two"]) {
      document.getElementById(id).addEventListener("superpayment:success", (e) => {
        window.__hits.push([id, e.target.tagName, e.detail.order_id]);
      });
    }
  });

  const pay = async (n, code) => {
    const frame = await (await page.locator("iframe").nth(n).elementHandle()).contentFrame();
    await frame.click("#start");
    await frame.locator("#code-0").fill(code);
    await frame.waitForSelector("#msg-0.ok");
    await frame.click("#pay");
    await frame.waitForSelector("#done");
    return frame;
  };
  const second = await pay(1, b);
  assert.match((await second.textContent("#done")).replace(/\u00a0/g, " "), /20,00 € bezahlt/);
  await pay(0, a);
  // Each success event is dispatched on its own script tag, inside its own container.
  const hits = await page.evaluate(() => window.__hits);
  assert.deepEqual(hits, [
    ["two", "SCRIPT", "MULTI-2"],
    ["one", "SCRIPT", "MULTI-1"],
  ]);
  const successes = seen.events.filter((e) => e.type === "success").map((e) => JSON.parse(e.detail));
  assert.deepEqual(successes.map((d) => d.order_id).sort(), ["MULTI-1", "MULTI-2"]);
  assert.deepEqual(violations, [], "no CSP violation");
  const globals = await page.evaluate(() => Object.keys(window).filter((k) => /superpayment/i.test(k)));
  assert.deepEqual(globals, ["SuperPayment"]);
  await context.close();
});

test("messages from other frames or origins are ignored", async () => {
  const context = await browser.newContext();
  const { page, seen, url } = await merchantPage(context, tag({ "data-order-id": "SPOOF-1" }), "/spoof.html");
  await page.goto(url);
  await page.waitForSelector("iframe");
  // A script of the page (or another frame) forges the widget's success message.
  await page.evaluate(() => {
    window.postMessage({ sp: 1, type: "success", transaction_id: "txn_forged", order_id: "SPOOF-1", amount: "1", currency: "EUR" }, "*");
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(seen.events.filter((e) => e.type === "success").length, 0);
  await context.close();
});

test("data-success-url is followed with transaction_id and order_id, unless the success event is cancelled or the URL is not http(s)", async () => {
  const codes = await server.issue("100.00", 3);
  site.set("/thanks.html", "<!doctype html><p>Thanks</p>");
  const context = await browser.newContext();
  // [order id, data-success-url, cancelled by the page, followed]
  const cases = [
    ["FOLLOW-1", "/thanks.html?from=shop", false, true],
    ["CANCEL-1", "/thanks.html", true, false],
    // A scheme other than http(s) is never navigated to (about: is one the page's CSP would not stop).
    ["SCHEME-1", "about:blank", false, false],
  ];
  for (const [i, [orderId, successUrl, cancel, followed]] of cases.entries()) {
    const attrs = { "data-order-id": orderId, "data-success-url": successUrl };
    const { page, seen, url } = await merchantPage(context, tag(attrs), `/${orderId}.html`);
    await page.goto(url);
    if (cancel) {
      await page.evaluate(() => document.addEventListener("superpayment:success", (e) => e.preventDefault()));
    }
    const frame = page.frameLocator("iframe");
    await frame.locator("#start").click();
    await frame.locator("#code-0").fill(codes[i]);
    await frame.locator("#msg-0.ok").waitFor();
    await frame.locator("#pay").click();
    for (let n = 0; n < 200 && !seen.events.some((e) => e.type === "success"); n++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const paid = JSON.parse(seen.events.find((e) => e.type === "success").detail);
    if (followed) {
      await page.waitForURL(/\/thanks\.html\?/);
      const to = new URL(page.url());
      assert.equal(to.searchParams.get("from"), "shop", "the URL's own query is kept");
      assert.equal(to.searchParams.get("transaction_id"), paid.transaction_id);
      assert.equal(to.searchParams.get("order_id"), orderId);
    } else {
      // Well past the 800 ms the redirect waits for.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(page.url(), url, `${orderId} stays on the page`);
    }
    await page.close();
  }
  await context.close();
});
