"use strict";
// Sorting and filtering of each task's cards, in the page itself: the report opens from disk with no server.
(function () {
  function score(card) {
    return card.dataset.score === "" ? NaN : parseFloat(card.dataset.score);
  }

  function setup(section) {
    const box = section.querySelector(".cards");
    const cards = Array.from(box.children);
    const higherIsBetter = section.dataset.higherIsBetter === "true";
    const sort = section.querySelector("select.sort");
    const filter = section.querySelector("input.filter");
    const visible = section.querySelector(".visible");

    function order(kind) {
      const sorted = cards.slice().sort(function (a, b) {
        if (kind === "id") {
          return a.dataset.id.localeCompare(b.dataset.id, undefined, { numeric: true });
        }
        const x = score(a), y = score(b);
        if (isNaN(x) || isNaN(y)) {
          return Number(isNaN(x)) - Number(isNaN(y));  // unscored cards last
        }
        const worstFirst = higherIsBetter ? x - y : y - x;
        return kind === "worst" ? worstFirst : -worstFirst;
      });
      box.append.apply(box, sorted);
    }

    function apply() {
      const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      cards.forEach(function (card) {
        const match = words.every(function (word) { return card.dataset.text.indexOf(word) >= 0; });
        card.hidden = !match;
        shown += match ? 1 : 0;
      });
      visible.textContent = words.length ? shown + " of " + cards.length + " match" : "";
    }

    sort.addEventListener("change", function () { order(sort.value); });
    filter.addEventListener("input", apply);
    order(sort.value);
  }

  document.querySelectorAll("section.task").forEach(setup);
})();
