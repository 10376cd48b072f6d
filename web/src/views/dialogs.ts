// Small dialogs: create a channel, start a direct message.

import type { Actions } from "../actions";
import { h } from "../dom";
import type { Store } from "../store";

function dialog(title: string, body: HTMLElement[], submitLabel: string, onSubmit: () => boolean): HTMLDialogElement {
  const id = `dlg-${Math.random().toString(36).slice(2)}`;
  const dlg = h("dialog", { class: "dialog", "aria-labelledby": id }) as HTMLDialogElement;
  const form = h(
    "form",
    {
      method: "dialog",
      onsubmit: (e: Event) => {
        e.preventDefault();
        if (onSubmit()) dlg.close();
      },
    },
    h("h2", { id }, title),
    ...body,
    h("div", { class: "dialog-buttons" }, h("button", { class: "btn", type: "button", onclick: () => dlg.close() }, "Cancel"), h("button", { class: "btn btn-primary", type: "submit" }, submitLabel)),
  );
  dlg.append(form);
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

export function newChannelDialog(actions: Actions): void {
  const name = h("input", { id: "new-channel-name", required: true, maxlength: 80, pattern: "[^\\s#]+", autocomplete: "off" }) as HTMLInputElement;
  const priv = h("input", { id: "new-channel-private", type: "checkbox" }) as HTMLInputElement;
  dialog(
    "Create a channel",
    [
      h("label", { for: "new-channel-name" }, "Name"),
      name,
      h("label", { class: "check" }, priv, " Private (only invited people can see it)"),
    ],
    "Create",
    () => {
      const n = name.value.trim().replace(/^#/, "").toLowerCase();
      if (!n) return false;
      actions.createChannel(n, priv.checked);
      return true;
    },
  );
}

export function newDmDialog(store: Store, actions: Actions): void {
  const boxes = [...store.users.values()]
    .filter((u) => u.user_id !== store.me)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((u) => ({ u, box: h("input", { type: "checkbox", value: u.user_id }) as HTMLInputElement }));
  dialog(
    "New direct message",
    [h("fieldset", { class: "people" }, h("legend", {}, "With (1 to 7 people)"), boxes.map(({ u, box }) => h("label", { class: "check" }, box, ` ${u.name}`)))],
    "Open",
    () => {
      const ids = boxes.filter((b) => b.box.checked).map((b) => b.u.user_id);
      if (ids.length < 1 || ids.length > 7) return false;
      actions.openDm(ids);
      return true;
    },
  );
}
