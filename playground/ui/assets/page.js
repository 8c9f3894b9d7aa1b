// Architecture Playground: keyboard shortcut and "show in tree". Gradio runs this function once on page load.
() => {
  // Ctrl+Enter (Cmd+Enter on a Mac) runs Analyze, from anywhere on the page (the YAML editor included).
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      const button = document.querySelector("#analyze");
      if (button) { e.preventDefault(); e.stopPropagation(); button.click(); }
    }
  }, true);

  // "show in tree" (the stitched-modules table): open the Module tree tab, scroll to the module, flash it.
  document.addEventListener("click", (e) => {
    const link = e.target.closest(".pg-goto");
    if (!link) return;
    e.preventDefault();
    const tab = [...document.querySelectorAll("button[role=tab]")].find((b) => b.textContent.trim() === "Module tree");
    if (tab) tab.click();
    const path = link.dataset.path;
    let tries = 0;
    const reveal = () => {
      const line = [...document.querySelectorAll("#tree [data-path]")].find((l) => l.dataset.path === path);
      if (!line) { if (++tries < 40) setTimeout(reveal, 50); return; }
      line.scrollIntoView({block: "center"});
      line.classList.add("flash");
      setTimeout(() => line.classList.remove("flash"), 2500);
    };
    reveal();
  });
}
