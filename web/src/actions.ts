// What views may ask the app to do (implemented by app.ts). Views never talk to the server.

import type { FileLink } from "./files";
import type { Attachment, Uuid, SearchHit } from "./types";

export interface Actions {
  openChannel(channelId: Uuid, opts?: { focus?: "composer" | "none" }): void;
  openThread(channelId: Uuid, parentId: Uuid): void;
  closeThread(): void;
  send(channelId: Uuid, text: string, threadTs?: Uuid, files?: Attachment[]): void;
  retry(clientMsgId: string): void;
  discard(clientMsgId: string): void;
  edit(channelId: Uuid, messageId: Uuid, text: string): void;
  remove(channelId: Uuid, messageId: Uuid): void;
  toggleReaction(channelId: Uuid, messageId: Uuid, emoji: string): void;
  loadOlder(channelId: Uuid): Promise<void>;
  typing(channelId: Uuid): void;
  search(query: string): void;
  closeSearch(): void;
  jumpTo(hit: SearchHit): void;
  openDm(userIds: Uuid[]): void;
  createChannel(name: string, isPrivate: boolean): void;
  join(channelId: Uuid): void;
  signOut(): void;
  toast(text: string): void;
  /** Uploads a file to a channel (grant, PUT with progress, complete): the file to attach. */
  upload(channelId: Uuid, file: File, onProgress: (sent: number) => void, signal: AbortSignal): Promise<Attachment>;
  /** Deletes a file I uploaded. */
  deleteFile(fileId: Uuid): Promise<void>;
  /** A short-lived download URL for a file (cached until near its expiry, unless `fresh`). */
  fileLink(fileId: Uuid, fresh?: boolean): Promise<FileLink>;
}
