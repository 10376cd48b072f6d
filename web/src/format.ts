// Message text: mentions (`<@user_id>` on the wire, `@name` on screen), links, emoji names,
// times, and the server's search highlight (HTML-escaped, matches in <em>), all as DOM nodes.

import { h, type Child } from "./dom";
import type { Store } from "./store";

const MENTION = /<@([0-9a-fA-F-]{36})>|@(channel|here)\b|(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])/g;

/** Renders message text: mentions as @name chips, URLs as links, the rest as text. */
export function renderText(text: string, store: Store): Child[] {
  const out: Child[] = [];
  let last = 0;
  for (const m of text.matchAll(MENTION)) {
    if (m.index! > last) out.push(text.slice(last, m.index));
    if (m[1]) {
      const me = m[1] === store.me;
      out.push(h("span", { class: me ? "mention mention-me" : "mention", "data-user-id": m[1] }, `@${store.userName(m[1])}`));
    } else if (m[2]) {
      out.push(h("span", { class: "mention mention-me" }, `@${m[2]}`));
    } else {
      out.push(h("a", { href: m[3], target: "_blank", rel: "noopener noreferrer" }, m[3]));
    }
    last = m.index! + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'", "#x27": "'", "#x2F": "/", "#47": "/" };

function decodeEntities(s: string): string {
  return s.replace(/&(#?[a-zA-Z0-9]+);/g, (all, name: string) => {
    if (name in ENTITIES) return ENTITIES[name];
    if (/^#x[0-9a-f]+$/i.test(name)) return String.fromCodePoint(parseInt(name.slice(2), 16));
    if (/^#[0-9]+$/.test(name)) return String.fromCodePoint(parseInt(name.slice(1), 10));
    return all;
  });
}

/** The search `highlight`: only <em> is markup; everything else is escaped text. Built as DOM
 * nodes (never innerHTML), with mentions rendered like in messages. */
export function renderHighlight(html: string, store: Store): Child[] {
  const out: Child[] = [];
  let inEm = false;
  for (const part of html.split(/(<\/?em>)/)) {
    if (part === "<em>") inEm = true;
    else if (part === "</em>") inEm = false;
    else if (part) {
      const nodes = renderText(decodeEntities(part), store);
      out.push(inEm ? h("mark", {}, nodes) : nodes);
    }
  }
  return out;
}

/** `@name` typed in the composer becomes `<@user_id>` on the wire. */
export function encodeMentions(text: string, store: Store): string {
  const names = [...store.users.values()].sort((a, b) => b.name.length - a.name.length);
  if (names.length === 0) return text;
  const alt = names.map((u) => u.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  const re = new RegExp(`(^|[^\\w<])@(${alt})(?![\\w-])`, "gi");
  return text.replace(re, (_all, pre: string, name: string) => {
    const u = store.userByName(name);
    return u ? `${pre}<@${u.user_id}>` : _all;
  });
}

/** The inverse, for editing a message: `<@user_id>` back to `@name`. */
export function decodeMentions(text: string, store: Store): string {
  return text.replace(/<@([0-9a-fA-F-]{36})>/g, (_all, id: string) => `@${store.userName(id)}`);
}

export function mentionsMe(text: string, me: string): boolean {
  return text.includes(`<@${me}>`) || /@(channel|here)\b/.test(text);
}

const EMOJI: Record<string, string> = {
  "+1": "👍", thumbsup: "👍", "-1": "👎", tada: "🎉", heart: "❤️", smile: "😄", joy: "😂", eyes: "👀",
  white_check_mark: "✅", rocket: "🚀", fire: "🔥", pray: "🙏", thinking_face: "🤔", wave: "👋", ok_hand: "👌",
};
/** The reactions the picker offers. */
export const QUICK_REACTIONS = ["thumbsup", "tada", "heart", "smile", "eyes", "white_check_mark", "rocket", "thinking_face"];

export function emojiGlyph(name: string): string {
  return EMOJI[name] ?? `:${name}:`;
}

export function formatTime(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatDay(ts: number): string {
  const d = new Date(ts);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric", year: d.getFullYear() === today.getFullYear() ? undefined : "numeric" });
}

export function formatFull(ts: number): string {
  return new Date(ts).toLocaleString();
}

export function badgeCount(n: number): string {
  return n > 99 ? "99+" : String(n);
}

export function initials(name: string): string {
  return (name.trim()[0] ?? "?").toUpperCase();
}

/** A stable hue per user for avatars. */
export function hue(id: string): number {
  let x = 0;
  for (const c of id) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return x % 360;
}

/** A file size as people read it: "512 bytes", "68.4 KB", "12 MB" (1 KB = 1024 bytes). */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 ? Math.round(n) : n.toFixed(1).replace(/\.0$/, "")} ${units[i]}`;
}
