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
    card.setAttribute("aria-busy", "true");
    results.appendChild(card);
    const summary = card.querySelector(".summary");
    const fail = (text) => {
      card.classList.add("failed");
      card.removeAttribute("aria-busy");
      card.querySelector(".preview").remove();
      summary.textContent = text;
    };
    let response, body;
    try {
      response = await fetch(`${url}?${query}`, { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRFToken": csrf } });
      body = await response.json();
    } catch (error) {
      fail(response ? `Failed (${response.status}): the server's answer was not JSON` : `Failed: ${error.message}`);
      return;
    }
    card.removeAttribute("aria-busy");
    if (!response.ok) {
      fail(`Refused (${response.status}): ${body.error?.message ?? "no reason given"}`);
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
    if (!e.target.files.length) return;
    run(e.target.files[0]);
    e.target.value = ""; // choosing the same file again must still send it
  });
  target.addEventListener("change", () => run(lastFile));
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
  root.dataset.ready = "true";
})();
