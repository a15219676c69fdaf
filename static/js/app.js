// A refused request in words, not its HTTP status ("Not allowed"): the words are the server's
// (core.exceptions.REFUSALS), put into every page as the JSON block #refusal-words.
window.refusal = (status) => {
  const block = document.getElementById("refusal-words");
  const words = block ? JSON.parse(block.textContent) : {};
  return words[status] ?? (status >= 500 ? "Failed" : "Not accepted");
};

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

// A form with data-confirm="…" asks first: the page's confirm dialog says what will happen; Confirm sends
// the form as its button would have (the browser's own validation has already passed by then).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("form[data-confirm]") || form.dataset.confirmed) return;
  event.preventDefault();
  const dialog = document.getElementById("confirm-dialog");
  const submitter = event.submitter;
  dialog.querySelector("#confirm-text").textContent = form.dataset.confirm;
  dialog.querySelector("[data-testid=confirm-yes]").onclick = () => {
    form.dataset.confirmed = "1";
    dialog.close();
    form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
  };
  dialog.showModal();
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

// The register form starts from the previous version's metadata: mark each field changed from it.
document.addEventListener("input", (event) => {
  const field = event.target.closest("[data-previous]");
  if (!field) return;
  const label = field.closest("label");
  const changed = field.value.trim() !== field.dataset.previous.trim();
  label.classList.toggle("changed", changed);
  let note = label.querySelector(".was");
  if (changed && !note) {
    note = document.createElement("small");
    note.className = "was";
    label.appendChild(note);
  }
  if (note) note.textContent = changed ? `changed; the previous version had: ${field.dataset.previous.replace(/\n/g, ", ").slice(0, 120)}` : "";
});
