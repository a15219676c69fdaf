// Draws every plotly figure the page carries as JSON (<script type="application/json" class="figure">),
// so the page needs no inline script. Each plot is kept the width of its card: plotly sizes a plot once,
// from its container's width at that moment, and follows only window resizes afterwards. A card whose
// width settles later (the grid laid out, fonts loaded, a narrow phone) would keep a plot drawn too wide
// and clipped; a ResizeObserver on each plot's container redraws it at the container's width instead.
//
// A title is wrapped, at spaces, to the room left of the plot's toolbar (measured with the title's own
// font), so it never runs under the toolbar or off the card; its lines push the plot down (title automargin).
//
// Auto-refresh (a checkbox with data-refresh="seconds"): fetches the page with ?refresh=1 and redraws
// each plot with Plotly.react under a fixed uirevision, so a zoom or a hidden trace the viewer chose
// survives the new data; the summary below the charts is swapped whole (open "earlier" lists stay open).
(() => {
  const KEEP = "viewer"; // uirevision: unchanged between refreshes, so plotly keeps the viewer's zoom
  const CONFIG = {
    displaylogo: false,
    // the few a reader uses (zoom, pan, reset, save as PNG): a short toolbar leaves the title its room
    modeBarButtonsToRemove: ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],
  };
  const plots = [];
  // What wrapping a title needs — the toolbar's width, the title's font and left pad — is the same on every
  // chart (one layout, one set of buttons): it is measured on the first chart drawn.
  let measure = null;
  const ruler = document.createElement("canvas").getContext("2d");
  function learn(plot) {
    const { font, pad } = plot._fullLayout.title;
    const toolbar = plot.querySelector(".modebar")?.getBoundingClientRect().width ?? 0;
    measure = { room: toolbar + pad.l + 16, font: `${font.weight ?? "normal"} ${font.size}px ${font.family}` };
  }
  // The title as lines (plotly's <br>) broken at spaces to fit `width` beside the toolbar.
  function wrapped(text, width) {
    if (!measure || !width) return text;
    ruler.font = measure.font;
    const lines = [];
    for (const word of text.split(" ")) {
      const line = lines.length ? `${lines[lines.length - 1]} ${word}` : word;
      if (lines.length && ruler.measureText(line).width <= width - measure.room) lines[lines.length - 1] = line;
      else lines.push(word);
    }
    return lines.join(" <br>"); // the space ends a line unseen, and keeps the title's text whole
  }
  const titleOf = (figure) => figure.layout.title?.text ?? "";
  // A title whose text alone changed is placed by the margins from before its lines pushed them
  // (automargin, plotly.js 4.1): relaying it out once more, now they are pushed, puts it where they are.
  const settle = (plot) => Plotly.relayout(plot, { "title.y": plot._fullLayout.title.y });
  function retitle(plot, text) {
    if (text !== plot._fullLayout.title.text) Plotly.relayout(plot, { "title.text": text }).then(() => settle(plot));
  }
  const fit = new ResizeObserver((entries) => {
    for (const { target: plot, contentRect } of entries) {
      const width = Math.floor(contentRect.width);
      if (width > 0 && plot._fullLayout && Math.abs(plot._fullLayout.width - width) > 1) {
        // a new width lays the whole chart out again: the title is placed right in the same pass
        Plotly.relayout(plot, { width, "title.text": wrapped(plot.dataset.title, width) });
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
    const drawing = Plotly.newPlot(plot, figure.data, layoutFor(plot, figure), CONFIG);
    if (!measure && plot.querySelector(".modebar")) learn(plot); // charts drawn next are wrapped from the start
    drawing.then(() => {
      // the first chart, drawn before there was a toolbar to measure, is wrapped now; the rest already are
      if (!measure) learn(plot);
      retitle(plot, wrapped(plot.dataset.title, plot._fullLayout.width));
    });
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
    const width = widthOf(plot);
    plot.dataset.title = titleOf(figure);
    const layout = { ...figure.layout, width, uirevision: KEEP };
    layout.title = { ...layout.title, text: wrapped(plot.dataset.title, width) };
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
        if (!blocks[i].dataset.drawn) return;
        const title = plots[i]._fullLayout.title.text;
        Plotly.react(plots[i], figure.data, layoutFor(plots[i], figure)).then(() => {
          if (plots[i]._fullLayout.title.text !== title) settle(plots[i]);
        });
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
