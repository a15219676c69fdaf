// Draws every plotly figure the page carries as JSON (<script type="application/json" class="figure">),
// so the page needs no inline script. Each plot is kept the width of its card: plotly sizes a plot once,
// from its container's width at that moment, and follows only window resizes afterwards. A card whose
// width settles later (the grid laid out, fonts loaded, a narrow phone) would keep a plot drawn too wide
// and clipped; a ResizeObserver on each plot's container redraws it at the container's width instead.
(() => {
  const fit = new ResizeObserver((entries) => {
    for (const { target: plot, contentRect } of entries) {
      const width = Math.floor(contentRect.width);
      if (width > 0 && plot._fullLayout && Math.abs(plot._fullLayout.width - width) > 1) {
        Plotly.relayout(plot, { width });
      }
    }
  });
  document.querySelectorAll("script.figure").forEach((block) => {
    const figure = JSON.parse(block.textContent);
    const plot = document.createElement("div");
    plot.className = "plot";
    block.after(plot);
    // A block element: its width is its card's content width, whatever the plot inside draws.
    const width = Math.floor(plot.getBoundingClientRect().width) || undefined;
    Plotly.newPlot(plot, figure.data, { ...figure.layout, width }, { displaylogo: false });
    fit.observe(plot);
  });
})();
