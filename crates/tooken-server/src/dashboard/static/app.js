// Tooken dashboard: conveniences only. Every action works without this
// file; it adds copy-to-clipboard buttons and tidies the token form.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      try {
        if (document.execCommand("copy")) {
          resolve();
        } else {
          reject(new Error("copy refused"));
        }
      } catch (e) {
        reject(e);
      } finally {
        document.body.removeChild(area);
      }
    });
  }

  function selectContents(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // Buttons are in the page, hidden, for browsers that run this script.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target) {
      return;
    }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(target.textContent.trim()).then(
        function () {
          button.textContent = "Copied";
          button.classList.add("done");
          window.setTimeout(function () {
            button.textContent = label;
            button.classList.remove("done");
          }, 2000);
        },
        function () {
          selectContents(target);
          button.textContent = "Press Ctrl+C to copy";
        }
      );
    });
  });

  // A secret is selected whole with one click, for copying by hand.
  document.querySelectorAll(".secret-value").forEach(function (el) {
    el.addEventListener("click", function () {
      selectContents(el);
    });
  });

  // The token form: the date field matters only for "Custom date".
  var expiry = document.getElementById("expiry");
  var custom = document.getElementById("custom-date");
  if (expiry && custom) {
    var sync = function () {
      custom.hidden = expiry.value !== "custom";
    };
    expiry.addEventListener("change", sync);
    sync();
  }
})();
