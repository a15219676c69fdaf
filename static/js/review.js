// The review queue's keyboard and drawing (templates/monitoring/review.html): digits pick a class (/ goes to
// the class select, to type any class), a/r accept or
// reject the focused box, n no object, Enter saves, s skips, j/k next/previous; a missed object is dragged on
// the image or typed as x1, y1, x2, y2. The form posts what the API takes: a label, or the accepted boxes and
// the missed ones as JSON.
(function () {
  "use strict";
  const form = document.getElementById("review-form");
  const svg = document.getElementById("review-svg");
  const SVG_NS = "http://www.w3.org/2000/svg";
  const missed = [];

  function rectOf(index) {
    return svg ? svg.querySelector('rect.review-box[data-index="' + index + '"]') : null;
  }

  function showDecision(box) {
    const rect = rectOf(box.dataset.index);
    if (rect) rect.classList.toggle("rejected", !box.checked);
    const verdict = box.closest("label").querySelector(".verdict");
    if (verdict) verdict.textContent = box.checked ? "accepted" : "rejected";
  }

  const decisions = Array.from(document.querySelectorAll('input[name="accepted"]'));
  decisions.forEach(function (box) {
    box.addEventListener("change", function () { showDecision(box); });
    box.addEventListener("focus", function () { const r = rectOf(box.dataset.index); if (r) r.classList.add("focused"); });
    box.addEventListener("blur", function () { const r = rectOf(box.dataset.index); if (r) r.classList.remove("focused"); });
  });

  // --- missed objects ---
  const field = (name) => document.getElementById("missed-" + name);
  const list = document.getElementById("missed-list");
  const hidden = document.getElementById("missed-json");

  function drawMissed() {
    if (!list) return;
    list.textContent = "";
    if (svg) svg.querySelectorAll("rect.missed").forEach((r) => r.remove());
    missed.forEach(function (m, i) {
      const li = document.createElement("li");
      li.textContent = m.label + " (" + m.box.x1 + ", " + m.box.y1 + ")–(" + m.box.x2 + ", " + m.box.y2 + ") ";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.addEventListener("click", function () { missed.splice(i, 1); drawMissed(); });
      li.appendChild(remove);
      list.appendChild(li);
      if (svg) {
        const r = document.createElementNS(SVG_NS, "rect");
        r.setAttribute("class", "box box-second missed");
        r.setAttribute("x", m.box.x1); r.setAttribute("y", m.box.y1);
        r.setAttribute("width", m.box.x2 - m.box.x1); r.setAttribute("height", m.box.y2 - m.box.y1);
        svg.appendChild(r);
      }
    });
    if (hidden) hidden.value = JSON.stringify(missed);
  }

  function addMissed() {
    const corners = ["x1", "y1", "x2", "y2"].map((k) => field(k).value.trim());
    if (corners.some((v) => v === "" || !Number.isFinite(Number(v)))) {
      say("Type the four corners x1, y1, x2, y2 (pixels of the image), or drag on the image.");
      field("x1").focus();
      return;
    }
    const [x1, y1, x2, y2] = corners.map(Number);
    missed.push({ label: field("label").value, box: { x1: x1, y1: y1, x2: x2, y2: y2 } });
    ["x1", "y1", "x2", "y2"].forEach((k) => { field(k).value = ""; });
    drawMissed();
    say("Missed " + field("label").value + " added (" + missed.length + " in all). Enter saves.");
    const save = form.querySelector('[data-testid="review-save"]');
    if (save) save.focus(); // Enter now saves; Shift+Tab goes back to the corners for another
  }

  function say(text) {
    let status = document.getElementById("review-status-line");
    if (!status && form) {
      status = document.createElement("p");
      status.id = "review-status-line";
      status.className = "muted";
      status.setAttribute("role", "status");
      form.appendChild(status);
    }
    if (status) status.textContent = text;
  }

  const add = document.getElementById("missed-add");
  if (add) add.addEventListener("click", addMissed);
  const none = document.getElementById("no-object");
  function noObject() {
    decisions.forEach(function (box) { box.checked = false; showDecision(box); });
    missed.length = 0;
    drawMissed();
    say("No object: every box rejected. Enter saves.");
  }
  if (none) none.addEventListener("click", noObject);

  // Drag on the image: the corners go into the four inputs, in the image's pixels.
  if (svg && field("x1")) {
    let start = null;
    let ghost = null;
    const at = function (event) {
      const point = svg.createSVGPoint();
      point.x = event.clientX; point.y = event.clientY;
      return point.matrixTransform(svg.getScreenCTM().inverse());
    };
    const view = svg.viewBox.baseVal;
    const clamp = (v, high) => Math.round(Math.min(Math.max(v, 0), high) * 10) / 10;
    svg.addEventListener("pointerdown", function (event) {
      start = at(event);
      ghost = document.createElementNS(SVG_NS, "rect");
      ghost.setAttribute("class", "box box-second");
      svg.appendChild(ghost);
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", function (event) {
      if (!start) return;
      const p = at(event);
      ghost.setAttribute("x", Math.min(start.x, p.x)); ghost.setAttribute("y", Math.min(start.y, p.y));
      ghost.setAttribute("width", Math.abs(p.x - start.x)); ghost.setAttribute("height", Math.abs(p.y - start.y));
    });
    svg.addEventListener("pointerup", function (event) {
      if (!start) return;
      const p = at(event);
      field("x1").value = clamp(Math.min(start.x, p.x), view.width);
      field("y1").value = clamp(Math.min(start.y, p.y), view.height);
      field("x2").value = clamp(Math.max(start.x, p.x), view.width);
      field("y2").value = clamp(Math.max(start.y, p.y), view.height);
      ghost.remove();
      start = null;
      say("Corners taken from the drawing: pick the class and add it.");
      field("label").focus();
    });
  }

  function click(id) {
    const el = document.getElementById(id);
    if (el) el.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !form) return;
    const target = event.target;
    const tag = target.tagName;
    const typing = tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && target.type !== "checkbox");
    if (event.key === "Enter") {
      if (target.id && target.id.startsWith("missed-") && target.tagName !== "BUTTON") {
        event.preventDefault();
        addMissed();
      } else if (tag !== "BUTTON" && tag !== "A" && tag !== "SUMMARY" && !target.closest(".review-filters")) {
        event.preventDefault();
        form.requestSubmit();
      }
      return;
    }
    const key = event.key.toLowerCase();
    // Digits pick a class even from the class select (its type-ahead keeps the letters); the corner inputs
    // and the filters keep every key.
    const picking = /^[1-9]$/.test(key) && target.id === "review-label";
    if (typing && !picking) return;
    if (/^[1-9]$/.test(key)) {
      const pick = document.querySelector('.pick[data-key="' + key + '"]');
      const select = document.getElementById("review-label");
      if (pick && select) {
        select.value = pick.dataset.label;
        say("True class: " + pick.dataset.label + ". Enter saves.");
        event.preventDefault();
      }
    } else if ((key === "a" || key === "r") && target.name === "accepted") {
      target.checked = key === "a";
      showDecision(target);
      event.preventDefault();
    } else if (key === "n" && none) {
      noObject();
      event.preventDefault();
    } else if (key === "s") {
      const skip = document.getElementById("skip-form");
      if (skip) { event.preventDefault(); skip.requestSubmit(); }
    } else if (key === "/" && document.getElementById("review-label")) {
      event.preventDefault();
      document.getElementById("review-label").focus();
    } else if (key === "j") {
      click("review-next");
    } else if (key === "k") {
      click("review-prev");
    }
  });

  document.querySelectorAll(".pick").forEach(function (pick) {
    pick.addEventListener("click", function () {
      const select = document.getElementById("review-label");
      if (select) select.value = pick.dataset.label;
    });
  });

  // Start where the keys act: the first box for a detector, the input itself for a classifier (its class
  // select would take the letters for its type-ahead; / or Tab goes there).
  const first = decisions[0] || document.querySelector('[data-testid="review-item"]');
  if (first) first.focus({ preventScroll: true });
})();
