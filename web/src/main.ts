// Entry point: find a token (URL fragment, storage), then run the app, or show the sign-in form.

import { ConfabAuthError, ConfabError } from "@confab/client";
import { App } from "./app";
import { forgetToken, saveToken, savedToken, takeTokenFromUrl } from "./auth";
import { clear } from "./dom";
import { signInView } from "./views/signin";

const mount = document.getElementById("root")!;
let app: App | null = null;

function signIn(error?: string): void {
  app?.stop();
  app = null;
  clear(mount);
  mount.append(
    signInView((token) => {
      saveToken(token);
      void run(token);
    }, error),
  );
}

async function run(token: string): Promise<void> {
  const a = new App(token, (reason) => {
    forgetToken();
    signIn(reason);
  });
  app = a;
  clear(mount);
  mount.append(a.root);
  try {
    await a.start();
  } catch (e) {
    if (app !== a) return;
    a.stop();
    if (e instanceof ConfabAuthError || (e instanceof ConfabError && (e.status === 401 || e.status === 403))) {
      forgetToken();
      signIn("That token was refused (expired or invalid).");
    } else {
      signIn(`Could not connect: ${(e as Error).message}`);
    }
  }
}

const token = takeTokenFromUrl() ?? savedToken();
if (token) void run(token);
else signIn();
