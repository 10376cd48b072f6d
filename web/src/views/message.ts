// One message: author, time, text (mentions, links), attachments, reactions, thread summary and
// its actions (react, reply in thread, edit, delete). Used by the channel list and the thread.

import type { Actions } from "../actions";
import { renderAttachments } from "../attachments";
import { append, h } from "../dom";
import { decodeMentions, emojiGlyph, formatDay, formatFull, formatTime, hue, initials, QUICK_REACTIONS, renderText } from "../format";
import type { Store } from "../store";
import type { Message } from "../types";

export interface MessageFlags {
  /** Same author as the previous message, shortly after: no avatar or name. */
  compact: boolean;
  /** First message of its day: a day divider above it. */
  day: boolean;
  /** In the thread pane (no "reply in thread" button, no thread summary). */
  inThread: boolean;
}

export function messageElement(m: Message, flags: MessageFlags, store: Store, actions: Actions): HTMLElement {
  const author = store.userName(m.user_id);
  const mine = m.user_id === store.me;
  const time = h("time", { datetime: new Date(m.ts).toISOString(), title: formatFull(m.ts) }, formatTime(m.ts));
  const body = h("div", { class: "msg-body" });
  if (!flags.compact) body.append(h("div", { class: "msg-meta" }, h("span", { class: "msg-author" }, author), time));

  const text = h("div", { class: "msg-text" });
  if (m.deleted) text.append(h("span", { class: "msg-deleted" }, "This message was deleted."));
  else append(text, renderText(m.text, store));
  if (m.edited_at && !m.deleted) text.append(" ", h("span", { class: "msg-edited", title: `edited ${formatFull(m.edited_at)}` }, "(edited)"));
  body.append(text);

  const files = renderAttachments(m, actions);
  if (files) body.append(h("div", { class: "msg-attachments", role: "group", "aria-label": "Attachments" }, files));

  const reactions = Object.entries(m.reactions ?? {}).filter(([, users]) => users.length > 0);
  if (reactions.length && !m.deleted) {
    body.append(
      h(
        "div",
        { class: "reactions", role: "group", "aria-label": "Reactions" },
        reactions.map(([emoji, users]) => {
          const names = users.map((u) => store.userName(u)).join(", ");
          const pressed = users.includes(store.me);
          return h(
            "button",
            {
              class: pressed ? "reaction reaction-mine" : "reaction",
              "aria-pressed": pressed ? "true" : "false",
              "aria-label": `${emoji} reaction by ${names}${pressed ? " (click to remove yours)" : ""}`,
              title: `${names} reacted with :${emoji}:`,
              "data-emoji": emoji,
              onclick: () => actions.toggleReaction(m.channel_id, m.message_id, emoji),
            },
            h("span", { class: "reaction-emoji", "aria-hidden": "true" }, emojiGlyph(emoji)),
            h("span", { class: "reaction-count" }, String(users.length)),
          );
        }),
      ),
    );
  }

  if (!flags.inThread && m.thread && m.thread.reply_count > 0) {
    const n = m.thread.reply_count;
    body.append(
      h(
        "button",
        { class: "thread-link", "aria-label": `${n} ${n === 1 ? "reply" : "replies"}, open thread`, onclick: () => actions.openThread(m.channel_id, m.message_id) },
        h("span", { class: "thread-avatars", "aria-hidden": "true" }, m.thread.reply_users.slice(0, 3).map((u) => avatar(store.userName(u), u, "xs"))),
        `${n} ${n === 1 ? "reply" : "replies"}`,
      ),
    );
  }

  const tools = m.deleted
    ? null
    : h(
        "div",
        { class: "msg-actions", role: "toolbar", "aria-label": "Message actions" },
        h("button", { class: "icon-btn", "aria-label": "Add reaction", title: "Add reaction", "aria-haspopup": "true", onclick: (e: Event) => openPicker(e.currentTarget as HTMLElement, m, actions) }, "☺"),
        !flags.inThread && h("button", { class: "icon-btn", "aria-label": "Reply in thread", title: "Reply in thread", onclick: () => actions.openThread(m.channel_id, m.message_id) }, "💬"),
        mine && h("button", { class: "icon-btn", "aria-label": "Edit message", title: "Edit", onclick: () => startEdit(el, m, store, actions) }, "✎"),
        mine && h("button", { class: "icon-btn", "aria-label": "Delete message", title: "Delete", onclick: () => confirmDelete(m, actions) }, "🗑"),
      );

  const nFiles = m.deleted ? 0 : (m.attachments?.length ?? 0);
  const label = `${author}, ${formatTime(m.ts)}: ${m.deleted ? "deleted message" : decodeMentions(m.text, store).slice(0, 200)}${nFiles ? ` (${nFiles} ${nFiles === 1 ? "file" : "files"})` : ""}`;
  const el = h(
    "article",
    {
      class: `msg${flags.compact ? " msg-compact" : ""}${mine ? " msg-mine" : ""}`,
      "data-message-id": m.message_id,
      "data-seq": m.seq,
      "data-user-id": m.user_id,
      tabindex: "-1",
      "aria-label": label,
    },
    flags.compact ? h("div", { class: "msg-gutter" }, h("time", { class: "msg-gutter-time", datetime: new Date(m.ts).toISOString(), title: formatFull(m.ts) }, formatTime(m.ts))) : avatar(author, m.user_id, "md"),
    body,
    tools,
  );
  if (!flags.day) return el;
  return h("div", { class: "msg-wrap", "data-message-id": m.message_id }, h("div", { class: "day-divider", role: "separator" }, h("span", {}, formatDay(m.ts))), el);
}

export function avatar(name: string, id: string, size: "xs" | "md"): HTMLElement {
  return h("span", { class: `avatar avatar-${size}`, style: `--hue:${hue(id)}`, "aria-hidden": "true" }, initials(name));
}

/** The article inside a rendered message node (which may be wrapped with a day divider). */
export function articleOf(node: Element): HTMLElement | null {
  return node.matches("article") ? (node as HTMLElement) : node.querySelector("article");
}

function openPicker(anchor: HTMLElement, m: Message, actions: Actions): void {
  document.querySelector(".emoji-picker")?.remove();
  let gone = false;
  const dismiss = () => {
    if (gone) return;
    gone = true; // removing the focused picker fires focusout, which lands here again
    picker.remove();
  };
  const close = () => {
    dismiss();
    anchor.focus();
  };
  const picker = h(
    "div",
    {
      class: "emoji-picker",
      role: "menu",
      "aria-label": "Pick a reaction",
      onkeydown: (e: KeyboardEvent) => {
        const items = [...picker.querySelectorAll<HTMLElement>("button")];
        const i = items.indexOf(document.activeElement as HTMLElement);
        if (e.key === "Escape") close();
        else if (e.key === "ArrowRight" || e.key === "ArrowDown") items[(i + 1) % items.length].focus();
        else if (e.key === "ArrowLeft" || e.key === "ArrowUp") items[(i - 1 + items.length) % items.length].focus();
        else return;
        e.preventDefault();
        e.stopPropagation();
      },
      onfocusout: (e: FocusEvent) => {
        if (!picker.contains(e.relatedTarget as Node)) dismiss();
      },
    },
    QUICK_REACTIONS.map((name) =>
      h(
        "button",
        {
          role: "menuitem",
          class: "emoji-choice",
          "aria-label": `React with ${name.replace(/_/g, " ")}`,
          title: `:${name}:`,
          "data-emoji": name,
          onclick: () => {
            actions.toggleReaction(m.channel_id, m.message_id, name);
            close();
          },
        },
        emojiGlyph(name),
      ),
    ),
  );
  anchor.closest(".msg-actions")!.after(picker);
  picker.querySelector("button")?.focus();
}

/** Inline editing: Enter saves, Escape cancels. */
export function startEdit(el: HTMLElement, m: Message, store: Store, actions: Actions): void {
  const article = articleOf(el) ?? el;
  const text = article.querySelector<HTMLElement>(".msg-text");
  if (!text || article.querySelector(".msg-edit")) return;
  const input = h("textarea", { class: "msg-edit-input", "aria-label": "Edit message", rows: 2 }) as HTMLTextAreaElement;
  input.value = decodeMentions(m.text, store);
  const done = (save: boolean) => {
    const value = input.value.trim();
    if (save && value && value !== decodeMentions(m.text, store)) actions.edit(m.channel_id, m.message_id, value);
    form.replaceWith(text);
    article.focus();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      done(true);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      done(false);
    }
  });
  const form = h(
    "div",
    { class: "msg-edit" },
    input,
    h(
      "div",
      { class: "msg-edit-buttons" },
      h("button", { class: "btn", onclick: () => done(false) }, "Cancel"),
      h("button", { class: "btn btn-primary", onclick: () => done(true) }, "Save"),
      h("span", { class: "hint" }, "Enter to save, Escape to cancel"),
    ),
  );
  text.replaceWith(form);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function confirmDelete(m: Message, actions: Actions): void {
  if (window.confirm("Delete this message? This cannot be undone.")) actions.remove(m.channel_id, m.message_id);
}
