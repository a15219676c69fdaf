// Confirm dialogs: a button with data-dialog opens the <dialog> of that id; data-close closes it.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog]");
  if (opener) {
    document.getElementById(opener.dataset.dialog)?.showModal();
    return;
  }
  const closer = event.target.closest("[data-close]");
  if (closer) closer.closest("dialog")?.close();
});

// A select with data-autosubmit submits its form when changed (no inline handlers: the CSP allows none).
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
});

// Polling (hx-trigger="every …") pauses while a confirm dialog is open, so a refresh never replaces the
// row whose dialog the user is answering.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt.matches("[data-pause-while-dialog]") && document.querySelector("dialog[open]")) {
    event.preventDefault();
  }
});
