/* The demo shop's own script: shows which SuperPayment events its page receives. It sees
 * outcomes (transaction id, amount) and never a voucher code: those stay in the iframe. */
(function () {
  "use strict";
  var list = document.getElementById("events");
  if (!list) return;
  ["ready", "success", "error"].forEach(function (type) {
    document.addEventListener("superpayment:" + type, function (e) {
      var li = document.createElement("li");
      li.textContent = "superpayment:" + type + " " + JSON.stringify(e.detail);
      li.className = "event-" + type;
      list.appendChild(li);
    });
  });
})();
