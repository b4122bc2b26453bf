// What a reader of one page meets, measured in the page (tests/browser).
// Called by Playwright's page.evaluate with no argument; returns plain data.
async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const visible = (el) =>
    el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
  const describe = (el) => {
    const cls = typeof el.className === "string" && el.className.trim()
      ? "." + el.className.trim().split(/\s+/).join(".") : "";
    const text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 70);
    return `<${el.tagName.toLowerCase()}${cls}> ${JSON.stringify(text)}`;
  };

  // Math: wait for MathJax to finish typesetting, when the page has math.
  const math = [...document.querySelectorAll(".math")];
  let mathjax = "no math on the page";
  if (math.length) {
    for (let i = 0; i < 300 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++) {
      await sleep(50);
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
      await sleep(50);  // reader_fixes.js boxes wide inline formulas right after
      mathjax = "typeset";
    } else {
      mathjax = "MathJax never loaded";
    }
  }
  const rawMath = math
    .filter((el) => !el.querySelector("mjx-container"))
    .map((el) => el.textContent.trim().slice(0, 70));
  const mathErrors = [...document.querySelectorAll("mjx-merror")]
    .map((el) => el.getAttribute("data-mjx-error") || el.textContent.slice(0, 70));
  // TeX the Markdown parser never saw as math shows as text: delimiters or
  // control words outside code and outside typeset math.
  // Collapsed solutions count too: the reader opens them.
  const texPattern = /\\\(|\\\[|\$\$|\\[a-zA-Z]{2,}/;
  const strayTex = [];
  const walker = document.createTreeWalker(
    document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("pre, code, script, style, mjx-container, .math, .highlight")) continue;
    if (texPattern.test(node.textContent)) {
      strayTex.push(node.textContent.trim().slice(0, 70));
    }
  }

  // Images: every one loaded; figures in chapters captioned, with alt text.
  const images = [...document.images];
  for (const img of images) {
    img.loading = "eager";
  }
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  const brokenImages = images
    .filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.getAttribute("src"));
  const outputImages = [...document.querySelectorAll(".cell_output img")];
  const uncaptioned = outputImages
    .filter((img) => !img.closest("figure") || !img.closest("figure").querySelector("figcaption"))
    .map((img) => img.getAttribute("src"));
  const badAlt = outputImages
    .filter((img) => {
      const alt = (img.getAttribute("alt") || "").trim();
      return alt.length < 15 || /^[0-9a-f]{16,}/i.test(alt) || /\.(png|svg|jpe?g)$/i.test(alt);
    })
    .map((img) => `${img.getAttribute("src")}: alt=${JSON.stringify(img.getAttribute("alt"))}`);

  // Layout: nothing wider than the window except inside a box that scrolls;
  // content clipped by a box that hides its overflow counts as cut off.
  const width = document.documentElement.clientWidth;
  const tooWide = [];
  const reported = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    if (rect.right <= width + 1 && rect.left >= -1) continue;
    if (!visible(el) || el.closest("mjx-assistive-mml, .visually-hidden, .sr-only")) continue;
    let ancestor = el.parentElement;
    let verdict = "page";
    for (; ancestor && ancestor !== document.body; ancestor = ancestor.parentElement) {
      const style = getComputedStyle(ancestor);
      if (style.display === "inline" || style.display === "contents") continue;  // cannot clip
      const overflow = style.overflowX;
      if (overflow === "auto" || overflow === "scroll") { verdict = "scrolls"; break; }
      if (overflow === "hidden" || overflow === "clip") { verdict = "cut off"; break; }
    }
    if (verdict === "scrolls") continue;
    if ([...reported].some((outer) => outer.contains(el))) continue;
    reported.add(el);
    tooWide.push(`${describe(el)} ${Math.round(rect.left)}..${Math.round(rect.right)} px` +
      (verdict === "cut off" ? ", cut off" : ""));
  }
  // A box that scrolls sideways shows a shadow at the edge that hides content.
  const noScrollHint = [...document.querySelectorAll("div.math mjx-container, mjx-container.reader-wide-math")]
    .filter((el) => el.scrollWidth > el.clientWidth + 1 && visible(el))
    .filter((el) => getComputedStyle(el).backgroundImage === "none")
    .map(describe);
  // Code and outputs: no line runs past its box at this width.
  const cutCode = [...document.querySelectorAll("div.cell_input pre, div.cell_output pre")]
    .filter((el) => el.scrollWidth > el.clientWidth + 1 && visible(el))
    .map(describe);

  // Answers: a checker's "Correct" printed where the reader can see it.
  const visibleCorrect = [...document.querySelectorAll(".cell_output")]
    .filter((el) => visible(el) && /^\s*Correct\b/m.test(el.innerText))
    .map(describe);

  return {
    mathjax, mathCount: math.length, rawMath, mathErrors, strayTex,
    brokenImages, uncaptioned, badAlt, tooWide, noScrollHint, cutCode, visibleCorrect,
    pageWidth: document.documentElement.scrollWidth, width,
  };
}
