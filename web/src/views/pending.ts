// Messages typed here and not yet acknowledged: shown greyed at the end of their list, with
// "retry"/"discard" when the server refused them.

import type { Actions } from "../actions";
import { h, clear, append } from "../dom";
import { renderText } from "../format";
import type { Pending, Store } from "../store";

export function renderPending(el: HTMLElement, items: Pending[], store: Store, actions: Actions): void {
  clear(el);
  for (const p of items) {
    el.append(
      h(
        "div",
        { class: `msg msg-pending${p.failed ? " msg-failed" : ""}`, "data-client-msg-id": p.client_msg_id },
        h("span", { class: "avatar avatar-md", "aria-hidden": "true" }, "…"),
        h(
          "div",
          { class: "msg-body" },
          h("div", { class: "msg-meta" }, h("span", { class: "msg-author" }, store.userName(store.me)), h("span", { class: "hint" }, p.failed ? `Not sent: ${p.failed}` : "Sending…")),
          (() => {
            const t = h("div", { class: "msg-text" });
            append(t, renderText(p.text, store));
            return t;
          })(),
          p.files && h("ul", { class: "pending-files", "aria-label": "Files" }, p.files.map((f) => h("li", {}, h("span", { "aria-hidden": "true" }, "📎 "), f.name))),
          p.failed &&
            h(
              "div",
              { class: "msg-edit-buttons" },
              h("button", { class: "btn btn-small", onclick: () => actions.retry(p.client_msg_id) }, "Retry"),
              h("button", { class: "btn btn-small", onclick: () => actions.discard(p.client_msg_id) }, "Discard"),
            ),
        ),
      ),
    );
  }
}
