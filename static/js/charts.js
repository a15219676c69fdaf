// Draws every plotly figure the page carries as JSON (<script type="application/json" class="figure">),
// so the page needs no inline script. Each plot is kept the width of its card: plotly sizes a plot once,
// from its container's width at that moment, and follows only window resizes afterwards. A card whose
// width settles later (the grid laid out, fonts loaded, a narrow phone) would keep a plot drawn too wide
// and clipped; a ResizeObserver on each plot's container redraws it at the container's width instead.
//
// Auto-refresh (a checkbox with data-refresh="seconds"): fetches the page with ?refresh=1 and redraws
// each plot with Plotly.react under a fixed uirevision, so a zoom or a hidden trace the viewer chose
// survives the new data; the summary below the charts is swapped whole (open "earlier" lists stay open).
(() => {
  const KEEP = "viewer"; // uirevision: unchanged between refreshes, so plotly keeps the viewer's zoom
  const plots = [];
  const fit = new ResizeObserver((entries) => {
    for (const { target: plot, contentRect } of entries) {
      const width = Math.floor(contentRect.width);
      if (width > 0 && plot._fullLayout && Math.abs(plot._fullLayout.width - width) > 1) {
        Plotly.relayout(plot, { width });
      }
    }
  });
  const widthOf = (plot) => Math.floor(plot.getBoundingClientRect().width) || undefined;
  // Charts in view are drawn at once; the others when they come near the viewport, or one per idle
  // moment of the browser, so a page of eighteen charts is usable before the last is drawn.
  function draw(block) {
    if (block.dataset.drawn) return;
    block.dataset.drawn = "1";
    const figure = JSON.parse(block.textContent);
    const plot = block.nextElementSibling;
    // A block element: its width is its card's content width, whatever the plot inside draws.
    Plotly.newPlot(plot, figure.data, { ...figure.layout, width: widthOf(plot), uirevision: KEEP }, { displaylogo: false });
    fit.observe(plot);
    // A zoom the viewer made, remembered per axis: uirevision keeps it only while the figure's own range
    // is unchanged, and a short span's padded range moves with every refresh.
    plot.on("plotly_relayout", (change) => {
      for (const axis of ["xaxis", "yaxis"]) {
        if (change[`${axis}.autorange`]) delete plot.dataset[axis];
        else if (`${axis}.range[0]` in change || `${axis}.range` in change) {
          plot.dataset[axis] = JSON.stringify(plot._fullLayout[axis].range);
        }
      }
    });
  }
  const blocks = [...document.querySelectorAll("script.figure")];
  blocks.forEach((block) => {
    const plot = document.createElement("div");
    plot.className = "plot";
    block.after(plot);
    plots.push(plot);
  });
  const near = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        near.unobserve(entry.target);
        draw(entry.target.previousElementSibling);
      }
    }
  }, { rootMargin: "200px 0px" });
  plots.forEach((plot) => near.observe(plot));
  const idle = window.requestIdleCallback || ((work) => setTimeout(work, 50));
  const rest = () => {
    const next = blocks.find((block) => !block.dataset.drawn);
    if (next) {
      near.unobserve(next.nextElementSibling);
      draw(next);
      idle(rest);
    }
  };
  idle(rest);

  function layoutFor(plot, figure) {
    const layout = { ...figure.layout, width: widthOf(plot), uirevision: KEEP };
    for (const axis of ["xaxis", "yaxis"]) {
      if (plot.dataset[axis]) layout[axis] = { ...layout[axis], range: JSON.parse(plot.dataset[axis]), autorange: false };
    }
    return layout;
  }

  const toggle = document.querySelector("[data-refresh]");
  if (!toggle) return;
  const status = document.querySelector("[data-testid=refreshed]");
  const summary = document.getElementById("summary");
  const remembered = localStorage.getItem("monitoring-auto-refresh");
  if (remembered !== null) toggle.checked = remembered === "on";
  let timer = null;

  async function refresh() {
    const url = new URL(window.location.href);
    url.searchParams.set("refresh", "1");
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const fresh = await answer.json();
      if (fresh.figures.length !== plots.length) {
        window.location.reload(); // a chart appeared or went: draw the page anew
        return;
      }
      fresh.figures.forEach((figure, i) => {
        blocks[i].textContent = JSON.stringify(figure); // a chart not drawn yet draws the fresh data
        if (blocks[i].dataset.drawn) Plotly.react(plots[i], figure.data, layoutFor(plots[i], figure));
      });
      // what the viewer opened and where they scrolled survive the swap
      const open = [...summary.querySelectorAll("details[data-keep][open]")].map((d) => d.dataset.keep);
      const scrolled = [...summary.querySelectorAll(".table-scroll, table.grid")].map((el) => el.scrollLeft);
      const focused = summary.contains(document.activeElement) ? document.activeElement.closest("[data-keep]")?.dataset.keep : null;
      summary.innerHTML = fresh.summary;
      open.forEach((key) => summary.querySelector(`details[data-keep="${CSS.escape(key)}"]`)?.setAttribute("open", ""));
      [...summary.querySelectorAll(".table-scroll, table.grid")].forEach((el, i) => { if (scrolled[i]) el.scrollLeft = scrolled[i]; });
      if (focused) summary.querySelector(`[data-keep="${CSS.escape(focused)}"] summary`)?.focus();
      status.textContent = `updated ${fresh.updated}`;
    } catch (error) {
      status.textContent = `refresh failed (${error.message}); retrying`;
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = toggle.checked ? setInterval(refresh, Number(toggle.dataset.refresh) * 1000) : null;
    status.textContent = toggle.checked ? status.textContent : "auto-refresh off";
  }
  toggle.addEventListener("change", () => {
    localStorage.setItem("monitoring-auto-refresh", toggle.checked ? "on" : "off");
    schedule();
  });
  schedule();
})();
