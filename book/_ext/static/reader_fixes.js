// On a first visit (nothing stored yet) the theme's head script sets an empty
// colour mode and the theme logs "Got invalid theme mode"; "auto" is the
// theme's own default.
if (!document.documentElement.dataset.mode) {
  document.documentElement.dataset.mode = "auto";
}

// pydata-sphinx-theme 0.17 / sphinx-book-theme 1.3 bind the sidebar handlers
// to the first .primary-toggle and .secondary-toggle of the page only, a
// hidden header button (pydata-sphinx-theme#2451). A click on any other
// toggle is passed on to that one; stopping it first means a future theme that
// binds every toggle does not see the click twice.
document.addEventListener("DOMContentLoaded", () => {
  for (const selector of [".primary-toggle", ".secondary-toggle"]) {
    const [bound, ...others] = document.querySelectorAll(selector);
    for (const button of others) {
      button.addEventListener(
        "click",
        (event) => {
          event.preventDefault();
          event.stopImmediatePropagation();
          bound.click();
        },
        true,
      );
    }
  }
});

// An inline formula cannot break across lines; one wider than its line (a
// long formula on a phone) gets a box of its own that scrolls (CSS class
// reader-wide-math). Measured once MathJax has typeset, and after resizing;
// all classes are cleared before measuring, so the page is laid out once.
function boxWideInlineMath() {
  const formulas = [...document.querySelectorAll('mjx-container[jax="CHTML"]:not([display="true"])')];
  formulas.forEach((math) => math.classList.remove("reader-wide-math"));
  const wide = formulas.filter((math) => {
    const line = math.parentElement.closest("p, li, dd, dt, td, th, div, section");
    return line && math.getBoundingClientRect().width > line.clientWidth;
  });
  wide.forEach((math) => math.classList.add("reader-wide-math"));
}

window.addEventListener("load", () => {
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    return;
  }
  MathJax.startup.promise.then(boxWideInlineMath);
  let timer;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(boxWideInlineMath, 200);
  });
});
