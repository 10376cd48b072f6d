// Where the token comes from: the URL fragment (`#token=...`, printed by `confab serve`), then
// sessionStorage/localStorage; otherwise the sign-in form asks for one.

const KEY = "confab.token";

/** Reads `#token=` from the address, stores it and removes it from the address bar. */
export function takeTokenFromUrl(): string | null {
  const frag = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = frag.get("token");
  if (!token) return null;
  frag.delete("token");
  const rest = frag.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  saveToken(token);
  return token;
}

export function savedToken(): string | null {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

export function saveToken(token: string): void {
  // sessionStorage keeps two tabs signed in as two people; localStorage remembers the last one
  sessionStorage.setItem(KEY, token);
  localStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}
