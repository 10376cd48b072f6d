// The sign-in form: paste a token (from `confab serve`'s output or `confab admin token`).

import { h } from "../dom";

export function signInView(onToken: (token: string) => void, error?: string): HTMLElement {
  const input = h("textarea", { id: "token-input", class: "token-input", rows: 3, required: true, spellcheck: "false", autocomplete: "off", "aria-describedby": "token-help" }) as HTMLTextAreaElement;
  const form = h(
    "form",
    {
      class: "signin-form",
      "aria-labelledby": "signin-title",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const t = input.value.trim().replace(/^.*#token=/, "");
        if (t) onToken(t);
      },
    },
    h("h1", { id: "signin-title" }, "Sign in to Confab"),
    error && h("p", { class: "signin-error", role: "alert" }, error),
    h("label", { for: "token-input" }, "Access token"),
    input,
    h(
      "p",
      { id: "token-help", class: "hint" },
      "Paste a token: `confab serve` prints one per demo user (the part after #token=), and `confab admin token` makes more.",
    ),
    h("button", { class: "btn btn-primary", type: "submit" }, "Sign in"),
  );
  setTimeout(() => input.focus(), 0);
  return h("div", { class: "signin" }, form);
}
