// Draws every plotly figure the page carries as JSON (<script type="application/json" class="figure">),
// so the page needs no inline script.
document.querySelectorAll("script.figure").forEach((block) => {
  const figure = JSON.parse(block.textContent);
  const plot = document.createElement("div");
  plot.className = "plot";
  block.after(plot);
  Plotly.newPlot(plot, figure.data, figure.layout, { displaylogo: false, responsive: true });
});
