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
((w, d) => {
  var s = d.currentScript;
  if (!s || !s.src) return;
  var ns = (w.SuperPayment = w.SuperPayment || { widgets: [] });
  var me = { script: s, events: [] };
  ns.widgets.push(me);
  var origin = new URL(s.src).origin;
  var a = s.dataset;
  var key = a.apiKey;

  // Until the page is parsed, events wait: a listener added by a later script hears them.
  var queue = d.readyState == "loading" && [];
  if (queue) d.addEventListener("DOMContentLoaded", () => {
    var q = queue;
    queue = 0;
    q.forEach((go) => go());
  });

  // `then` runs unless a listener cancels the event (only success is cancelable).
  var fire = (type, detail, then) => {
    var e = new CustomEvent("superpayment:" + type, { bubbles: true, cancelable: !!then, detail });
    var go = () => s.dispatchEvent(e) && then && then();
    me.events.push(e);
    queue ? queue.push(go) : go();
  };

  var fail = (code, message) => {
    console.error("SuperPayment: " + message);
    fire("error", { code, message });
  };

  // A secret key must never travel on: it would land in the iframe URL and the logs.
  if (!/^pk_(test|live)_[0-9a-z]{32}$/.test(key)) {
    var problem = "data-api-key must be a publishable key" +
      (/^sk_/.test(key) ? ", never a secret key: roll it now." : ".");
    // A wrong key shows up where the form would be, not as a silent blank.
    var box = d.createElement("div");
    box.setAttribute("role", "alert");
    box.textContent = "SuperPayment: " + problem;
    box.style.cssText = "color:#b3261e;font:14px system-ui";
    s.after(box);
    return fail("invalid_tag", problem);
  }

  // The iframe posts only to this page's origin, which it learns here. Each attribute goes
  // by its first letter (a, c, o, l, t, s); one left out is left out of the URL too, and the
  // iframe applies the defaults (currency EUR, the browser's language).
  var q = new URLSearchParams({ k: key, p: location.origin });
  "amount currency orderId locale theme signature".split(" ").forEach((n) => a[n] && q.set(n[0], a[n]));
  if (a.capture == "manual") q.set("m", 1);

  var f = (me.frame = d.createElement("iframe")), fs = f.style;
  f.src = origin + "/checkout.html?" + q;
  f.title = "Pay with a voucher (SuperPayment)";
  fs.cssText = "border:0;width:100%;height:64px;display:block";
  s.after(f);

  // A frame that never reports (unreachable server, framing refused by the browser) still
  // gets an answer; a refused origin is reported by the frame itself, at once.
  var timer = setTimeout(() => fail("frame_unavailable", "The checkout did not load within 15 seconds."), 15e3);

  w.addEventListener("message", (e) => {
    var m = e.data, t = m && m.type, detail = {};
    // Only this widget's own iframe, from its own origin, is listened to.
    if (e.source !== f.contentWindow || e.origin !== origin || !m || m.sp !== 1) return;
    // Only the documented fields travel on, as strings.
    var pick = (names) => names.split(" ").forEach((n) => (detail[n] = "" + m[n]));
    // The frame sends its content height as a whole number of pixels.
    if (t == "height") fs.height = m.height + "px";
    else if (t == "ready") clearTimeout(timer), fire(t, detail);
    else if (t == "error") clearTimeout(timer), pick("code message"), fire(t, detail);
    else if (t == "success") {
      pick("transaction_id order_id amount currency");
      fire(t, detail, () => {
        if (!a.successUrl) return;
        var u = new URL(a.successUrl, location);
        if (!/^https?:/.test(u)) return;
        ["transaction_id", "order_id"].forEach((n) => u.searchParams.set(n, detail[n]));
        // A moment to see and hear "Paid" before the page changes.
        setTimeout(() => location.assign(u), 800);
      });
    }
  });
})(window, document);
