/* SuperPayment loader: mounts the checkout iframe for the <script> tag that loads it.
 *
 *   <script src="https://pay.example/widget.js" data-api-key="pk_live_..."
 *           data-amount="99.00" data-currency="EUR" data-order-id="ORDER_123"></script>
 *
 * Optional: data-locale (en, fr, de), data-theme (light, dark), data-success-url,
 * data-signature, data-capture="manual" (only authorize: the shop's server captures later). The page learns the outcome through bubbling events on the script
 * element: superpayment:ready, superpayment:success {transaction_id, order_id, amount,
 * currency} and superpayment:error {code, message}, also kept in
 * window.SuperPayment.widgets[i].events (docs/widget.md). Voucher codes stay inside the iframe.
 * No eval, no inline code: works under a strict CSP. One global: window.SuperPayment. */
(function (w, d) {
  "use strict";
  var s = d.currentScript;
  if (!s || !s.src) return;
  var ns = w.SuperPayment || (w.SuperPayment = { widgets: [] });
  var me = { script: s, events: [] };
  ns.widgets.push(me);
  var origin = new URL(s.src).origin;
  var a = s.dataset;
  var key = a.apiKey || "", amount = a.amount || "", currency = a.currency || "EUR",
    order = a.orderId || "";

  // Until the page is parsed, events wait: a listener added by a later script hears them.
  var queue = d.readyState == "loading" && [];
  if (queue) d.addEventListener("DOMContentLoaded", function () {
    var q = queue;
    queue = 0;
    q.forEach(function (go) { go(); });
  });

  // `then` runs unless a listener cancels the event (only success is cancelable).
  function fire(type, detail, then) {
    var e = new CustomEvent("superpayment:" + type, { bubbles: true, cancelable: !!then, detail: detail });
    me.events.push(e);
    function go() { s.dispatchEvent(e) && then && then(); }
    queue ? queue.push(go) : go();
  }

  function fail(code, message) {
    console.error("SuperPayment: " + message);
    fire("error", { code: code, message: message });
  }

  // A secret key must never travel on: it would land in the iframe URL and the logs.
  var problem = "data-" + (
    /^sk_/.test(key) ? "api-key holds a secret key: never put it in a page; roll it now." :
    !/^pk_(test|live)_[0-9a-z]{32}$/.test(key) ? "api-key must be a publishable key (pk_test_/pk_live_)." :
    !/^\d+(\.\d+)?$/.test(amount) || !/[1-9]/.test(amount) ? "amount must be a positive decimal such as 99.00." :
    !/^[A-Z]{3}$/.test(currency) ? "currency must be an ISO 4217 code such as EUR." :
    !/^[\w.:#\/-]{1,64}$/.test(order) ? "order-id must be 1 to 64 of A-Z a-z 0-9 - _ . : # /." : "");
  if (problem != "data-") {
    // A wrong tag shows up where the form would be, not as a silent blank.
    var box = d.createElement("div");
    box.setAttribute("role", "alert");
    box.textContent = "SuperPayment: " + problem;
    box.style.cssText = "border:1px solid;color:#b3261e;padding:12px;font:14px system-ui";
    s.after(box);
    return fail("invalid_tag", problem);
  }

  // The iframe posts only to this page's origin, which it learns here.
  var q = new URLSearchParams({ k: key, a: amount, c: currency, o: order, p: location.origin });
  if (a.locale) q.set("l", a.locale);
  if (a.theme) q.set("t", a.theme);
  if (a.signature) q.set("s", a.signature);
  if (a.capture == "manual") q.set("m", "1");

  var f = me.frame = d.createElement("iframe"), fs = f.style;
  f.src = origin + "/checkout.html?" + q;
  f.title = "Pay with a voucher (SuperPayment)";
  fs.cssText = "border:0;width:100%;height:64px;display:block";
  s.after(f);

  // A frame that never reports (unreachable server, framing refused by the browser) still
  // gets an answer; a refused origin is reported by the frame itself, at once.
  var timer = setTimeout(function () {
    fail("frame_unavailable", "The checkout did not load within 15 seconds.");
  }, 15e3);

  w.addEventListener("message", function (e) {
    var m = e.data;
    // Only this widget's own iframe, from its own origin, is listened to.
    if (e.source !== f.contentWindow || e.origin !== origin || !m || m.sp !== 1) return;
    // Only the documented fields travel on, as strings.
    function pick(names) {
      var o = {};
      names.forEach(function (n) { o[n] = String(m[n]); });
      return o;
    }
    var detail;
    if (m.type == "height") fs.height = Math.max(0, +m.height || 0) + "px";
    else if (m.type == "ready") clearTimeout(timer), fire("ready", {});
    else if (m.type == "error") clearTimeout(timer), fire("error", pick(["code", "message"]));
    else if (m.type == "success") {
      detail = pick(["transaction_id", "order_id", "amount", "currency"]);
      fire("success", detail, function () {
        if (!a.successUrl) return;
        var u = new URL(a.successUrl, location.href);
        if (!/^https?:$/.test(u.protocol)) return;
        u.searchParams.set("transaction_id", detail.transaction_id);
        u.searchParams.set("order_id", detail.order_id);
        // A moment to see and hear "Paid" before the page changes.
        setTimeout(function () { location.assign(u.href); }, 800);
      });
    }
  });
})(window, document);
