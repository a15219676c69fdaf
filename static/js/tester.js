// Sample-upload tester: send the dropped image to the predict endpoint and draw the top-5 as bars.
(() => {
  const root = document.getElementById("tester");
  if (!root) return;
  const url = root.dataset.predictUrl;
  const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;
  const results = document.getElementById("results");
  const target = document.getElementById("target");
  const template = document.getElementById("result-card");

  async function ask(file, query, title, preview) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.querySelector(".title").textContent = title;
    card.querySelector(".preview").src = preview;
    results.appendChild(card);
    const response = await fetch(`${url}?${query}`, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRFToken": csrf } });
    const body = await response.json();
    const summary = card.querySelector(".summary");
    if (!response.ok) {
      card.classList.add("failed");
      card.querySelector(".preview").remove();
      summary.textContent = `Refused (${response.status}): ${body.error.message}`;
      return;
    }
    summary.innerHTML = "";
    summary.append(`v${body.model_version} (${body.stage}) answered `);
    const strong = document.createElement("strong");
    strong.textContent = body.label;
    strong.dataset.testid = "top-label";
    summary.append(strong, ` in ${body.latency_ms.toFixed(1)} ms${body.cached ? " (cached)" : ""}. `);
    const note = document.createElement("span");
    note.className = "muted";
    note.dataset.testid = "answered-by";
    note.textContent = `A test: v${body.model_version} answered, not counted as ${body.stage} traffic.`;
    summary.append(note);
    const bars = card.querySelector(".bars");
    for (const item of body.top_k) {
      const li = document.createElement("li");
      const pct = (item.confidence * 100).toFixed(1);
      li.innerHTML = `<span class="name"></span><span class="bar"><span style="width:${pct}%"></span></span><span class="pct">${pct} %</span>`;
      li.querySelector(".name").textContent = item.label;
      bars.appendChild(li);
    }
  }

  let lastFile = null;

  function run(file) {
    if (!file) return;
    lastFile = file;
    results.innerHTML = "";
    const preview = URL.createObjectURL(file);
    if (target.value === "compare") {
      ask(file, "stage=production", "Production", preview);
      ask(file, "stage=canary", "Canary", preview);
    } else {
      ask(file, target.value, target.options[target.selectedIndex].text, preview);
    }
  }

  document.getElementById("file").addEventListener("change", (e) => {
    run(e.target.files[0]);
    e.target.value = ""; // choosing the same file again must still send it
  });
  target.addEventListener("change", () => run(lastFile));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); run(e.dataTransfer.files[0]); });
  root.dataset.ready = "true";
})();
