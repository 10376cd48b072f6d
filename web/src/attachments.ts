// Files in the page, in one place: the composer's attachment tray (the "Attach files" button, drag
// and drop or paste onto the composer, a chip per file showing its upload's progress or the
// server's refusal) and a message's attachments (images as previews that open in a lightbox,
// other files as cards with a Download link, revoked ones as "File deleted"). The requests go
// through the actions (app.ts, files.ts): uploads start as soon as files are chosen.

import type { Actions } from "./actions";
import { ConfabError } from "@confab/client";
import { h, clear, type Child } from "./dom";
import { contentTypeOf } from "./files";
import { formatSize } from "./format";
import type { Attachment, Message, Uuid } from "./types";
import { openLightbox } from "./views/lightbox";

/** At most this many files per message (the server's limit). */
const MAX_FILES = 10;
/** Larger images get a card, not an inline preview (a preview downloads the whole file). */
const PREVIEW_MAX_BYTES = 20 * 1024 * 1024;
/** The preview box: at most this wide and high (CSS: .file-thumb). */
const THUMB_W = 360;
const THUMB_H = 180;
/** Images shown once: their natural size, so that a re-rendered message keeps its layout. */
const imageSizes = new Map<Uuid, [number, number]>();
/** Local previews on the chips of images up to this size. */
const CHIP_PREVIEW_MAX_BYTES = 10 * 1024 * 1024;

/** "file_too_large: 999 bytes is over …": what a chip or a toast says about a failure. */
function describe(e: unknown): string {
  if (e instanceof ConfabError) return e.message ? `${e.code}: ${e.message}` : e.code;
  return (e as Error)?.message ?? String(e);
}

function iconFor(type: string): string {
  if (type.startsWith("image/")) return "🖼️";
  if (type.startsWith("video/")) return "🎬";
  if (type.startsWith("audio/")) return "🎵";
  if (type === "application/pdf") return "📕";
  if (type === "application/zip") return "🗜️";
  if (type.startsWith("text/") || type === "application/json") return "📄";
  return "📎";
}

/** "TXT", "PDF": the extension, else the type's subtype. */
function kindOf(a: Attachment): string {
  const ext = /\.([a-z0-9]{1,8})$/i.exec(a.name)?.[1];
  return (ext ?? a.content_type.split("/")[1] ?? "file").toUpperCase();
}

// ---------------------------------------------------------------- the composer's tray

export interface AttachmentHost {
  actions: Actions;
  /** The channel the composer writes to (uploads are granted per channel). */
  channelId(): Uuid | null;
  /** The chips changed: the composer updates its Send button. */
  changed(): void;
}

interface Chip {
  file: File;
  channelId: Uuid;
  state: "uploading" | "done" | "failed";
  sent: number;
  error?: string;
  attachment?: Attachment;
  abort: AbortController;
  preview?: string;
  el: HTMLElement;
  status: HTMLElement;
  progress: HTMLProgressElement;
  remove: HTMLButtonElement;
}

let trays = 0;
let pageGuarded = false;

export class AttachmentTray {
  /** The "Attach files" button, for the composer's box. */
  readonly button: HTMLButtonElement;
  /** The chips and a status line, above the composer's box (holds the hidden file input). */
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  /** Every channel's chips: the tray shows those of the composer's current channel. */
  private chips: Chip[] = [];
  private notice = "";

  constructor(private readonly host: AttachmentHost) {
    const id = `tray-${++trays}`;
    this.input = h("input", { type: "file", multiple: true, class: "file-input", id: `${id}-input`, tabindex: "-1", "aria-hidden": "true" }) as HTMLInputElement;
    this.input.addEventListener("change", () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = "";
    });
    this.button = h(
      "button",
      { type: "button", class: "icon-btn attach-btn", "aria-label": "Attach files", title: "Attach files (or drop or paste them here)", "aria-controls": `${id}-chips`, onclick: () => this.input.click() },
      h("span", { "aria-hidden": "true" }, "📎"),
    ) as HTMLButtonElement;
    this.list = h("ul", { class: "chips", id: `${id}-chips`, "aria-label": "Files to send" });
    this.status = h("div", { class: "tray-status", role: "status", "aria-live": "polite" });
    this.el = h("div", { class: "tray" }, this.input, this.list, this.status);
    this.list.hidden = true;
  }

  /** Every chip of the current channel is uploaded (none uploading, none failed). */
  get ready(): boolean {
    return this.current().every((c) => c.state === "done");
  }

  /** The uploaded files of the current channel, for the message. */
  get files(): Attachment[] {
    return this.current().flatMap((c) => (c.state === "done" && c.attachment ? [c.attachment] : []));
  }

  /** Drag and drop onto `zone` and paste into `input` add files too. */
  acceptDrops(zone: HTMLElement, input: HTMLTextAreaElement): void {
    const hasFiles = (e: DragEvent) => [...(e.dataTransfer?.types ?? [])].includes("Files");
    zone.addEventListener("dragover", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer!.dropEffect = "copy";
      zone.classList.add("composer-drop");
    });
    zone.addEventListener("dragleave", (e) => {
      if (!zone.contains(e.relatedTarget as Node | null)) zone.classList.remove("composer-drop");
    });
    zone.addEventListener("drop", (e) => {
      zone.classList.remove("composer-drop");
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.stopPropagation();
      this.add([...(e.dataTransfer?.files ?? [])]);
      input.focus();
    });
    input.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (files.length === 0) return;
      e.preventDefault();
      this.add(files);
    });
    if (!pageGuarded) {
      // a file dropped anywhere else would make the browser leave the page to show it
      pageGuarded = true;
      for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => {
        if ([...((e as DragEvent).dataTransfer?.types ?? [])].includes("Files")) e.preventDefault();
      });
    }
  }

  /** Uploads files (chosen, dropped or pasted) to the composer's channel, starting at once. */
  add(files: File[]): void {
    const ch = this.host.channelId();
    if (!ch || files.length === 0) return;
    const room = Math.max(0, MAX_FILES - this.current().length);
    this.notice = files.length > room ? `At most ${MAX_FILES} files per message: ${files.length - room} not added.` : "";
    for (const file of files.slice(0, room)) this.start(file, ch);
    this.render();
  }

  /** The message went: its files are in it now. */
  sent(): void {
    for (const c of this.current()) this.drop(c);
    this.notice = "";
    this.render();
  }

  /** Shows the current channel's chips (after the composer moved to another channel). */
  render(): void {
    const chips = this.current();
    clear(this.list);
    for (const c of chips) this.list.append(c.el);
    this.list.hidden = chips.length === 0;
    this.paintStatus();
    this.host.changed();
  }

  private current(): Chip[] {
    const ch = this.host.channelId();
    return this.chips.filter((c) => c.channelId === ch);
  }

  private start(file: File, channelId: Uuid): void {
    const type = contentTypeOf(file);
    const size = formatSize(file.size);
    const preview = type.startsWith("image/") && file.size <= CHIP_PREVIEW_MAX_BYTES ? URL.createObjectURL(file) : undefined;
    const status = h("span", { class: "chip-status" });
    const progress = h("progress", { class: "chip-progress", max: Math.max(1, file.size), value: 0, "aria-label": `Uploading ${file.name}` }) as HTMLProgressElement;
    const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${file.name}`, title: "Remove" }, h("span", { "aria-hidden": "true" }, "✕")) as HTMLButtonElement;
    const el = h(
      "li",
      { class: "chip", "data-name": file.name, title: `${file.name} (${size})` },
      preview ? h("img", { class: "chip-thumb", src: preview, alt: "" }) : h("span", { class: "chip-icon", "aria-hidden": "true" }, iconFor(type)),
      h("span", { class: "chip-text" }, h("span", { class: "chip-name" }, file.name), status, progress),
      remove,
    );
    const chip: Chip = { file, channelId, state: "uploading", sent: 0, abort: new AbortController(), preview, el, status, progress, remove };
    remove.addEventListener("click", () => this.removeChip(chip));
    this.chips.push(chip);
    this.paint(chip);
    this.host.actions
      .upload(channelId, file, (sent) => {
        chip.sent = sent;
        this.paint(chip);
      }, chip.abort.signal)
      .then(
        (a) => {
          if (chip.abort.signal.aborted) {
            void this.host.actions.deleteFile(a.file_id).catch(() => {}); // removed while completing
            return;
          }
          chip.state = "done";
          chip.attachment = a;
          this.changed(chip);
        },
        (e) => {
          if (chip.abort.signal.aborted) return;
          chip.state = "failed";
          chip.error = describe(e);
          this.changed(chip);
        },
      );
  }

  /** Removes a chip: cancels its upload, or deletes its file if it was uploaded already. */
  private removeChip(chip: Chip): void {
    const chips = this.current();
    const i = chips.indexOf(chip);
    const hadFocus = chip.el.contains(document.activeElement);
    if (chip.state === "done" && chip.attachment) void this.host.actions.deleteFile(chip.attachment.file_id).catch(() => {});
    this.drop(chip);
    this.notice = `Removed ${chip.file.name}.`;
    this.render();
    if (hadFocus) {
      const next = chips[i + 1] ?? chips[i - 1];
      (next && next !== chip ? next.remove : this.button).focus();
    }
  }

  /** Forgets a chip (aborting its upload if it is still going). */
  private drop(chip: Chip): void {
    chip.abort.abort();
    if (chip.preview) URL.revokeObjectURL(chip.preview);
    this.chips = this.chips.filter((c) => c !== chip);
  }

  private changed(chip: Chip): void {
    this.paint(chip);
    this.paintStatus();
    this.host.changed();
  }

  private paint(chip: Chip): void {
    const size = formatSize(chip.file.size);
    chip.el.className = `chip chip-${chip.state}`;
    chip.progress.hidden = chip.state !== "uploading";
    chip.progress.value = chip.sent;
    const text =
      chip.state === "uploading"
        ? `${size} · ${Math.floor((100 * chip.sent) / Math.max(1, chip.file.size))}%`
        : chip.state === "done"
          ? `${size} · uploaded`
          : (chip.error ?? "the upload failed");
    if (chip.status.textContent !== text) chip.status.textContent = text;
    chip.status.classList.toggle("chip-error", chip.state === "failed");
  }

  private paintStatus(): void {
    const chips = this.current();
    const uploading = chips.filter((c) => c.state === "uploading").length;
    const failed = chips.filter((c) => c.state === "failed");
    const parts: string[] = [];
    if (this.notice) parts.push(this.notice);
    if (uploading) parts.push(`Uploading ${uploading} ${uploading === 1 ? "file" : "files"}…`);
    if (failed.length) {
      const what = failed.map((c) => `${c.file.name} (${c.error?.split(":")[0] ?? "failed"})`).join(", ");
      parts.push(`Could not upload ${what}: remove ${failed.length === 1 ? "it" : "them"} to send.`);
    }
    const text = parts.join(" ");
    if (this.status.textContent !== text) this.status.textContent = text;
  }
}

// ---------------------------------------------------------------- a message's attachments

/** A message's attachments (previews and cards), or nothing. */
export function renderAttachments(m: Message, actions: Actions): Child {
  if (m.deleted || !m.attachments?.length) return null;
  return m.attachments.map((a) => renderAttachment(a, actions));
}

function renderAttachment(a: Attachment, actions: Actions): HTMLElement {
  if (a.deleted) return deletedCard();
  if (a.content_type.startsWith("image/") && a.size <= PREVIEW_MAX_BYTES) return imagePreview(a, actions);
  return fileCard(a, actions);
}

function deletedCard(): HTMLElement {
  return h("div", { class: "file-card file-gone" }, h("span", { class: "file-icon", "aria-hidden": "true" }, "🚫"), h("span", { class: "file-meta" }, h("span", { class: "file-name" }, "File deleted")));
}

/** A card: icon, name, size and type, and a Download link that asks for a fresh URL. Once on
 * screen the link gets a URL (history does not say which files were deleted: a 410 does). */
function fileCard(a: Attachment, actions: Actions, note?: string): HTMLElement {
  const size = formatSize(a.size);
  const link = h(
    "a",
    {
      class: "file-download",
      href: "#",
      download: a.name,
      "aria-label": `Download ${a.name} (${size})`,
      onclick: (e: Event) => {
        e.preventDefault();
        void download(a, actions, link);
      },
    },
    "Download",
  ) as HTMLAnchorElement;
  const card = h(
    "div",
    { class: "file-card", "data-file-id": a.file_id },
    h("span", { class: "file-icon", "aria-hidden": "true" }, iconFor(a.content_type)),
    h("span", { class: "file-meta" }, h("span", { class: "file-name", title: a.name }, a.name), h("span", { class: "file-size" }, `${size} · ${note ?? kindOf(a)}`)),
    link,
  );
  if (!note)
    whenVisible(card, () =>
      actions.fileLink(a.file_id).then(
        (l) => void (link.href = l.url),
        (e) => void (e instanceof ConfabError && e.status === 410 && card.replaceWith(deletedCard())),
      ),
    );
  return card;
}

/** An image: a thumbnail (its URL asked for once it is on screen) that opens the lightbox. */
function imagePreview(a: Attachment, actions: Actions): HTMLElement {
  const size = formatSize(a.size);
  const img = h("img", { alt: a.name, decoding: "async", draggable: "false" }) as HTMLImageElement;
  const thumb = h("button", { type: "button", class: "file-thumb", "aria-label": `View image ${a.name} (${size})`, "aria-haspopup": "dialog", title: a.name }, img);
  const el = h(
    "figure",
    { class: "file-image", "data-file-id": a.file_id },
    thumb,
    h("figcaption", { class: "file-caption" }, h("span", { class: "file-name" }, a.name), h("span", { class: "file-size" }, size)),
  );
  const known = imageSizes.get(a.file_id);
  if (known) {
    // shown before: lay it out at its final size at once (no placeholder box while it reloads)
    const scale = Math.min(1, THUMB_W / known[0], THUMB_H / known[1]);
    img.width = Math.max(1, Math.round(known[0] * scale));
    img.height = Math.max(1, Math.round(known[1] * scale));
    el.classList.add("file-loaded");
  }
  let retried = false;
  const failed = (e: unknown) => {
    if (e instanceof ConfabError && e.status === 410) el.replaceWith(deletedCard());
    else el.replaceWith(fileCard(a, actions, "preview unavailable"));
  };
  const load = (fresh: boolean) => actions.fileLink(a.file_id, fresh).then((l) => void (img.src = l.url), failed);
  img.addEventListener("load", () => {
    imageSizes.set(a.file_id, [img.naturalWidth, img.naturalHeight]);
    el.classList.add("file-loaded");
  });
  img.addEventListener("error", () => {
    if (!img.getAttribute("src")) return;
    if (retried) return failed(null);
    retried = true; // the URL may have expired meanwhile: once more with a new one
    void load(true);
  });
  thumb.addEventListener("click", () =>
    openLightbox({
      opener: thumb,
      name: a.name,
      detail: size,
      url: img.complete && img.naturalWidth > 0 ? Promise.resolve(img.currentSrc || img.src) : actions.fileLink(a.file_id).then((l) => l.url),
      download: () => void download(a, actions),
    }),
  );
  whenVisible(el, () => void load(false));
  return el;
}

/** Asks for a fresh URL and saves the file (a new tab when the storage is another origin). */
async function download(a: Attachment, actions: Actions, link?: HTMLAnchorElement): Promise<void> {
  try {
    const { url } = await actions.fileLink(a.file_id, true);
    if (link) link.href = url;
    const sameOrigin = new URL(url, location.href).origin === location.origin;
    // `download` only works for same-origin URLs; elsewhere the storage's Content-Disposition decides
    const save = h("a", { href: url, download: sameOrigin ? a.name : null, target: sameOrigin ? null : "_blank", rel: "noopener", hidden: true });
    document.body.append(save);
    save.click();
    save.remove();
  } catch (e) {
    actions.toast(e instanceof ConfabError && e.status === 410 ? `${a.name} was deleted.` : `Could not download ${a.name}: ${describe(e)}`);
  }
}

// ---------------------------------------------------------------- load when on screen

const waiting = new Map<Element, () => void>();
let observer: IntersectionObserver | null = null;
let sweep: number | undefined;

/** Runs `fn` once `el` is on screen (now, if IntersectionObserver is missing). */
function whenVisible(el: Element, fn: () => void): void {
  if (typeof IntersectionObserver === "undefined") return fn();
  observer ??= new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const go = waiting.get(e.target);
      waiting.delete(e.target);
      observer!.unobserve(e.target);
      go?.();
    }
  });
  waiting.set(el, fn);
  observer.observe(el);
  // re-rendered messages leave old previews behind, never shown: stop watching those
  sweep ??= window.setTimeout(() => {
    sweep = undefined;
    for (const old of [...waiting.keys()]) {
      if (!old.isConnected) {
        waiting.delete(old);
        observer!.unobserve(old);
      }
    }
  }, 10_000);
}
