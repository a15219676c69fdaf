// Sample-upload tester: send the dropped image to the tester's endpoints and draw the answer — a
// classifier's top-5 as bars, a detector's boxes over the photo under a confidence slider — or production's
// and the canary's side by side. Which boxes of the two match is the server's answer (modelspec.boxes.match
// through the task), never worked out here.
(() => {
  const root = document.getElementById("tester");
  if (!root) return;
  const url = root.dataset.predictUrl;
  const compareUrl = root.dataset.compareUrl;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const results = document.getElementById("results");
  const target = document.getElementById("target");
  const template = document.getElementById("result-card");
  const summaryTemplate = document.getElementById("compare-summary");
  const cutRow = document.getElementById("cut-row"); // only on a page of a model with a detector
  const cut = document.getElementById("cut");
  const cutValue = document.getElementById("cut-value");
  const SVG = "http://www.w3.org/2000/svg";
  const COMPARE_DELAY_MS = 250; // a slider dragged in compare mode asks once it rests

  const chosen = () => target.options[target.selectedIndex];
  const cutAt = () => (cut ? Number(cut.value) : 0);

  function newCard(title, preview) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".title").textContent = title;
    card.querySelector(".preview").src = preview;
    card.setAttribute("aria-busy", "true");
    results.appendChild(card);
    return card;
  }

  function fail(card, text) {
    card.classList.add("failed");
    card.removeAttribute("aria-busy");
    card.querySelector(".shot").hidden = true;
    card.querySelector(".summary").textContent = text;
  }

  // POST the image; the JSON answer, or an Error whose message says why there is none.
  async function send(address, file, signal) {
    let response, body;
    try {
      response = await fetch(address, { method: "POST", body: file, signal, headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRFToken": csrf } });
      body = await response.json();
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(response ? `Failed (${response.status}): the server's answer was not JSON` : `Failed: ${error.message}`);
    }
    if (!response.ok) throw new Error(`${window.refusal(response.status)}: ${body.error?.message ?? "no reason given"}`);
    return body;
  }

  function answeredBy(summary, body, what) {
    summary.innerHTML = "";
    summary.append(`v${body.model_version} (${body.stage}) answered `);
    summary.append(what, ` in ${body.latency_ms.toFixed(1)} ms${body.cached ? " (cached)" : ""}. `);
    const note = document.createElement("span");
    note.className = "muted";
    note.dataset.testid = "answered-by";
    note.textContent = `A test: v${body.model_version} answered, not counted as ${body.stage} traffic.`;
    summary.append(note);
  }

  function drawBars(card, body) {
    const strong = document.createElement("strong");
    strong.textContent = body.label;
    strong.dataset.testid = "top-label";
    answeredBy(card.querySelector(".summary"), body, strong);
    const bars = card.querySelector(".bars");
    for (const item of body.top_k) {
      const li = document.createElement("li");
      const pct = (item.confidence * 100).toFixed(1);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = item.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("span");
      fill.style.width = `${pct}%`;
      bar.appendChild(fill);
      const value = document.createElement("span");
      value.className = "pct";
      value.textContent = `${pct} %`;
      li.append(name, bar, value);
      bars.appendChild(li);
    }
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  function byClass(detections) {
    const counts = new Map();
    for (const d of detections) counts.set(d.label, (counts.get(d.label) ?? 0) + 1);
    return [...counts].map(([label, n]) => `${n} ${label}`).join(", ");
  }

  // The boxes over the photo: rectangles in an SVG whose viewBox is the uploaded image's pixels (so they
  // scale with the photo), labels in HTML at the same spots (so they stay readable at any size). `marks`
  // (compare mode) gives each box its matched pair's number, or `only` for a box the other side lacks.
  function drawBoxes(card, detections, image, side, marks = null) {
    const shot = card.querySelector(".shot");
    shot.querySelector(".overlay")?.remove();
    shot.querySelector(".labels")?.remove();
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "overlay");
    svg.setAttribute("viewBox", `0 0 ${image.width} ${image.height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", detections.length ? `${plural(detections.length, "box", "boxes")}: ${byClass(detections)}` : "no boxes");
    const labels = document.createElement("div");
    labels.className = "labels";
    labels.setAttribute("aria-hidden", "true"); // the SVG's label and the summary say it in words
    detections.forEach((d, i) => {
      const mark = marks?.[i];
      const text = `${mark?.pair ? `${mark.pair} · ` : ""}${d.label} ${d.confidence.toFixed(2)}${mark?.only ? " · only here" : ""}`;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", `box ${side}${mark?.only ? " only" : ""}${mark?.pair ? " matched" : ""}`);
      rect.setAttribute("x", d.box.x1);
      rect.setAttribute("y", d.box.y1);
      rect.setAttribute("width", Math.max(d.box.x2 - d.box.x1, 0));
      rect.setAttribute("height", Math.max(d.box.y2 - d.box.y1, 0));
      rect.dataset.testid = "box";
      rect.dataset.confidence = d.confidence;
      const title = document.createElementNS(SVG, "title");
      title.textContent = text;
      rect.appendChild(title);
      svg.appendChild(rect);
      const label = document.createElement("span");
      label.className = `box-label ${side}${mark?.only ? " only" : ""}`;
      label.textContent = text;
      label.style.left = `${(100 * d.box.x1) / image.width}%`;
      label.style.top = `${(100 * d.box.y1) / image.height}%`;
      labels.appendChild(label);
    });
    shot.append(svg, labels);
  }

  // One version's detector answer, asked at min_confidence=0: the slider cuts it here, without asking again.
  function showDetections(card) {
    const body = card.answer;
    const at = cutAt();
    const shown = body.detections.filter((d) => d.confidence >= at);
    drawBoxes(card, shown, body.image, ["production", "canary"].includes(body.stage) ? body.stage : "other");
    const strong = document.createElement("strong");
    strong.textContent = `${plural(shown.length, "box", "boxes")} at confidence ≥ ${at.toFixed(2)}`;
    strong.dataset.testid = "box-count";
    const what = document.createDocumentFragment();
    what.append(strong, ` (${body.detections.length} at ≥ ${body.min_confidence.toFixed(2)})`);
    answeredBy(card.querySelector(".summary"), body, what);
  }

  async function ask(file, query, title, preview, display) {
    const card = newCard(title, preview);
    let body;
    try {
      body = await send(`${url}?${query}`, file);
    } catch (error) {
      fail(card, error.message);
      return;
    }
    card.removeAttribute("aria-busy");
    if (display === "boxes" || (!display && body.detections)) { // no display: the versions were not listed
      card.classList.add("boxes");
      card.answer = body;
      showDetections(card);
    } else {
      drawBars(card, body);
    }
  }

  // --- compare production vs canary, for detectors: one request answers both and which boxes matched ----
  let comparing = null; // {file, cards, summary, controller}

  function compareBoxes(file, preview) {
    const summary = summaryTemplate.content.firstElementChild.cloneNode(true);
    results.appendChild(summary);
    const cards = [newCard("Production", preview), newCard("Canary", preview)];
    for (const card of cards) card.classList.add("boxes");
    comparing = { file, cards, summary, controller: null };
    askCompare();
  }

  async function askCompare() {
    const current = comparing;
    if (!current) return;
    current.controller?.abort();
    const controller = new AbortController();
    current.controller = controller;
    const at = cutAt();
    const matching = current.summary.querySelector(".matching");
    matching.innerHTML = "";
    const progress = document.createElement("progress");
    progress.setAttribute("aria-label", "waiting for both answers");
    matching.append(progress, ` comparing at confidence ≥ ${at.toFixed(2)}…`);
    for (const card of current.cards) card.setAttribute("aria-busy", "true");
    let body;
    try {
      body = await send(`${compareUrl}?min_confidence=${at}`, current.file, controller.signal);
    } catch (error) {
      if (error.name === "AbortError") return; // a newer position of the slider asked since
      matching.textContent = error.message;
      for (const card of current.cards) fail(card, error.message);
      return;
    }
    if (comparing !== current || current.controller !== controller) return;
    const c = body.comparison;
    const sides = [body.production, body.canary];
    const marks = [sides[0].detections.map(() => ({ only: true })), sides[1].detections.map(() => ({ only: true }))];
    c.pairs.forEach((pair, k) => {
      marks[0][pair.first] = { pair: k + 1 };
      marks[1][pair.second] = { pair: k + 1 };
    });
    current.cards.forEach((card, i) => {
      card.removeAttribute("aria-busy");
      card.classList.remove("failed");
      card.querySelector(".shot").hidden = false;
      const side = i === 0 ? "production" : "canary";
      drawBoxes(card, sides[i].detections, sides[i].image, side, marks[i]);
      const strong = document.createElement("strong");
      strong.textContent = `${plural(sides[i].count, "box", "boxes")} at confidence ≥ ${at.toFixed(2)}`;
      strong.dataset.testid = "box-count";
      answeredBy(card.querySelector(".summary"), sides[i], strong);
    });
    const iou = c.mean_iou === null ? "no matched boxes" : `mean IoU ${c.mean_iou.toFixed(2)}`;
    matching.innerHTML = "";
    const strong = document.createElement("strong");
    strong.dataset.testid = "matching";
    strong.textContent = `${c.pairs.length} matched, ${c.only_first.length} only in production, ${c.only_second.length} only in canary`;
    matching.append(strong, ` · F1 ${c.f1.toFixed(2)}, ${iou} — at confidence ≥ ${at.toFixed(2)}.`);
    matching.title = `As the server matched them: ${c.matching}`;
  }

  let waiting = null;
  cut?.addEventListener("input", () => {
    cutValue.textContent = cutAt().toFixed(2);
    for (const card of results.querySelectorAll(".result.boxes")) if (card.answer) showDetections(card);
    if (comparing) {
      clearTimeout(waiting);
      waiting = setTimeout(askCompare, COMPARE_DELAY_MS);
    }
  });

  let lastFile = null;
  let lastPreview = null;

  function showCut() {
    if (cutRow) cutRow.hidden = chosen().dataset.display !== "boxes";
  }

  function run(file) {
    if (!file) return;
    lastFile = file;
    comparing?.controller?.abort();
    comparing = null;
    results.innerHTML = "";
    if (lastPreview) URL.revokeObjectURL(lastPreview);
    const preview = (lastPreview = URL.createObjectURL(file));
    const display = chosen().dataset.display;
    if (target.value === "compare") {
      if (display === "boxes") {
        compareBoxes(file, preview);
      } else {
        ask(file, "stage=production", "Production", preview, display);
        ask(file, "stage=canary", "Canary", preview, display);
      }
    } else {
      const query = display === "boxes" ? `${target.value}&min_confidence=0` : target.value;
      ask(file, query, chosen().text, preview, display);
    }
  }

  document.getElementById("file").addEventListener("change", (e) => {
    if (!e.target.files.length) return;
    run(e.target.files[0]);
    e.target.value = ""; // choosing the same file again must still send it
  });
  target.addEventListener("change", () => { showCut(); run(lastFile); });
  const drop = document.getElementById("drop");
  const chooser = document.getElementById("file");
  drop.addEventListener("click", () => chooser.click()); // a button: Enter and Space click it too
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
    if (file) { e.preventDefault(); run(file); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); run(e.dataTransfer.files[0]); });
  showCut();
  root.dataset.ready = "true";
})();
