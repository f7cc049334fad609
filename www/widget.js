/* SuperPayment loader: mounts the checkout iframe for the <script> tag that loads it.
 *
 *   <script src="https://pay.example/widget.js" data-api-key="pk_live_..."
 *           data-amount="99.00" data-currency="EUR" data-order-id="ORDER_123"></script>
 *
 * Optional: data-locale (en, fr, de), data-theme (light, dark), data-success-url,
 * data-signature, data-capture="manual" (only authorize: the shop's server captures later).
 * The page learns the outcome through bubbling events on the script element:
 * superpayment:ready, superpayment:success {transaction_id, order_id, amount, currency} and
 * superpayment:error {code, message}, also kept in window.SuperPayment.widgets[i].events
 * (docs/widget.md). Voucher codes stay inside the iframe.
 *
 * Only the key is checked here; amount, currency and order id are checked inside the
 * iframe by superpayment-core, the rules the server runs, which reports a malformed one as
 * invalid_tag like this file does for the key. Every byte here is downloaded by every
 * shopper of every shop: scripts/build-widget minifies it and keeps it within its budget.
 * No eval, no inline code: works under a strict CSP. One global: window.SuperPayment. */
// A block, not a function: its `let`s stay out of the page's globals and it needs no wrapper.
{
  let s = document.currentScript;
  // A tag the browser cannot name (currentScript null) or without a src throws here, before
  // it has an entry in window.SuperPayment.widgets.
  let me = { script: s, events: [] }, origin = new URL(s.src).origin;
  (window.SuperPayment = window.SuperPayment || { widgets: [] }).widgets.push(me);
  let a = s.dataset;
  let key = a.apiKey;

  // Until the page is parsed, events wait: a listener added by a later script hears them.
  // Each waits on one promise the loader's own DOMContentLoaded listener settles, so they
  // arrive in order, right after that listener and before any added later.
  let loaded = new Promise((r) => document.readyState == "loading" ? document.addEventListener("DOMContentLoaded", r) : r());

  // `then` runs unless a listener cancels the event (only success is cancelable).
  let fire = (type, detail, then) => {
    let e = new CustomEvent("superpayment:" + type, { detail, bubbles: 1, cancelable: then });
    me.events.push(e);
    loaded.then(() => s.dispatchEvent(e) && then && then());
  };

  let fail = (code, message) => {
    console.error("SuperPayment: " + message);
    fire("error", { code, message });
  };

  // A secret key must never travel on: it would land in the iframe URL and the logs.
  if (!/^pk_(test|live)_[0-9a-z]{32}$/.test(key)) {
    let problem = "data-api-key must be a publishable key" +
      (/^sk_/.test(key) ? ", never a secret key: roll it now." : ".");
    // A wrong key shows up where the form would be, not as a silent blank. Styles are set
    // through the CSSOM (`style = ...` is `style.cssText = ...`), which a CSP allows.
    let box = document.createElement("div");
    box.setAttribute("role", "alert");
    box.textContent = "SuperPayment: " + problem;
    box.style = "color:#b3261e;font:14px system-ui";
    s.after(box);
    fail("invalid_tag", problem);
  } else {
    // The iframe posts only to this page's origin, which it learns here. Each attribute goes
    // by its first letter (a, c, o, l, t, s); one left out is left out of the URL too, and
    // the iframe applies the defaults (currency EUR, the browser's language).
    let q = new URLSearchParams({ p: location.origin, k: key });
    "amount currency orderId locale theme signature".split(" ").forEach((n) => a[n] && q.set(n[0], a[n]));
    if (a.capture == "manual") q.set("m", 1);

    let f = (me.frame = document.createElement("iframe"));
    f.src = origin + "/checkout.html?" + q;
    f.title = "SuperPayment: pay with a voucher";
    f.style = "border:0;width:100%;height:64px;display:block";
    s.after(f);

    // A frame that never reports (unreachable server, framing refused by the browser) still
    // gets an answer; a refused origin is reported by the frame itself, at once.
    let timer = setTimeout(() => fail("frame_unavailable", "The checkout did not load within 15 seconds."), 15e3);

    addEventListener("message", (e) => {
      // Only the documented fields travel on, as strings.
      let m = e.data || 0, t = m.type, detail = {}, pick = (names) => names.split(" ").forEach((n) => (detail[n] = "" + m[n]));
      // Only this widget's own iframe, from its own origin, is listened to.
      if (m.sp !== 1 || e.origin !== origin || e.source !== f.contentWindow) return;
      // The frame sends its content height as a whole number of pixels.
      if (t == "height") f.style.height = m.height + "px";
      else if (t == "ready") clearTimeout(timer), fire(t, detail);
      else if (t == "error") clearTimeout(timer), pick("code message"), fire(t, detail);
      else if (t == "success") {
        pick("transaction_id order_id amount currency");
        fire(t, detail, () => {
          let u = a.successUrl && new URL(a.successUrl, location);
          if (/^https?:/.test(u)) {
            "transaction_id order_id".split(" ").forEach((n) => u.searchParams.set(n, detail[n]));
            // A moment to see and hear "Paid" before the page changes.
            setTimeout(() => location.href = u, 800);
          }
        });
      }
    });
  }
}
