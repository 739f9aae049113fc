// The console's only script, served from this origin (CSP `script-src 'self'`). Everything
// works without it; it adds copy buttons and reports CSP violations to the console.
"use strict";

// A blocked resource or script shows in the browser console, where the browser tests look.
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});

// <button data-copy="ID">: copies the text of element ID and says so.
function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const status = document.getElementById(`${button.dataset.copy}-status`);
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        if (status) status.textContent = "Copied.";
      } catch {
        if (status) status.textContent = "Copy failed: select the text and copy it.";
      }
    });
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", copyButtons);
} else {
  copyButtons();
}
