// Measures the time from loader start to a clickable pay button in headless Chromium.
//
//   node tests/browser/measure.mjs [--loads N]     (scripts/test-browser --measure runs it)
//
// A merchant page of another origin (its own server on another loopback port) carries the
// one script tag. Loader start is when
// widget.js finished downloading (its Resource Timing responseEnd: a parser-blocking
// script runs right then); clickable is when the page receives superpayment:ready, which
// the iframe posts once its pay button is rendered and enabled. Both are read on the
// page's own clock. Cold loads use a fresh browser context each (empty HTTP cache); warm
// loads reuse one context. Prints one JSON line.
import { launchBrowser, startMerchantSite, startServer } from "./harness.mjs";

const args = process.argv.slice(2);
const loads = Number(args[args.indexOf("--loads") + 1]) || 10;

// The 95th percentile by nearest rank: the value 95 % of the loads did not exceed.
function p95(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(s.length * 0.95) - 1)];
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const server = await startServer();
const browser = await launchBrowser();
const site = await startMerchantSite();
try {
  const loaderUrl = `${server.provider}/widget.js`;
  const html =
    `<!doctype html><html><body><h1>Checkout</h1>` +
    `<script src="${loaderUrl}" data-api-key="${server.merchant.pk}" data-amount="99.00" ` +
    `data-currency="EUR" data-order-id="MEASURE-1"></script></body></html>`;
  const pageUrl = site.set("/checkout.html", html);

  async function once(context) {
    const page = await context.newPage();
    await page.addInitScript(() => {
      document.addEventListener("superpayment:ready", () => {
        window.__clickableAt = performance.now();
      });
    });
    await page.goto(pageUrl);
    await page.waitForFunction(() => window.__clickableAt !== undefined, null, { timeout: 30_000 });
    const ms = await page.evaluate((url) => {
      const entry = performance.getEntriesByName(url)[0];
      return window.__clickableAt - entry.responseEnd;
    }, loaderUrl);
    // The button really is there and enabled.
    const frame = await (await page.locator("iframe").elementHandle()).contentFrame();
    if (!(await frame.locator("#start").isEnabled())) throw new Error("pay button not clickable");
    await page.close();
    return ms;
  }

  // One unmeasured load warms the server (first connections to PostgreSQL and Redis).
  const warmup = await browser.newContext();
  await once(warmup);
  await warmup.close();

  const cold = [];
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    cold.push(await once(context));
    await context.close();
  }
  const context = await browser.newContext();
  const warm = [];
  for (let i = 0; i < loads; i++) warm.push(await once(context));
  await context.close();

  const round = (x) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      loads,
      clickable_ms: round(median(cold)),
      clickable_p95_ms: round(p95(cold)),
      clickable_ms_warm: round(median(warm)),
      cold_ms: cold.map(round),
      warm_ms: warm.map(round),
      server: process.env.SUPERPAYMENT_BIN || "target/debug/superpayment",
      chromium: browser.version(),
    }),
  );
} finally {
  await site.close();
  await browser.close();
  await server.stop();
}
