// The image viewer: a modal dialog with the image, its name and size, Download and Close. Escape,
// Close or a click beside the image closes it, and focus returns to what opened it.

import { h } from "../dom";

export interface LightboxOptions {
  /** Focused again when the viewer closes. */
  opener: HTMLElement;
  name: string;
  /** Shown beside the name (the size). */
  detail: string;
  url: Promise<string>;
  download: () => void;
}

let count = 0;

export function openLightbox(opts: LightboxOptions): HTMLDialogElement {
  document.querySelector("dialog.lightbox")?.remove();
  const id = `lightbox-${++count}`;
  const img = h("img", { class: "lightbox-img", alt: opts.name }) as HTMLImageElement;
  const close = h("button", { type: "button", class: "btn", onclick: () => dlg.close() }, "Close");
  const body = h("div", { class: "lightbox-body" }, img);
  const dlg = h(
    "dialog",
    { class: "lightbox", "aria-labelledby": id },
    h(
      "div",
      { class: "lightbox-bar" },
      h("h2", { class: "lightbox-title", id, title: opts.name }, opts.name),
      h("span", { class: "lightbox-detail" }, opts.detail),
      h("button", { type: "button", class: "btn", onclick: () => opts.download() }, "Download"),
      close,
    ),
    body,
  ) as HTMLDialogElement;
  dlg.addEventListener("click", (e) => {
    if (e.target === dlg || e.target === body) dlg.close(); // beside the image
  });
  dlg.addEventListener("close", () => {
    dlg.remove();
    if (opts.opener.isConnected) opts.opener.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  close.focus();
  opts.url.then(
    (u) => void (img.src = u),
    () => img.replaceWith(h("p", { class: "hint" }, "The image could not be loaded.")),
  );
  return dlg;
}
