// Files: the one place where attachments plug in. The files API is not there yet, so both hooks
// render nothing; when it lands, `attachmentButton` adds the composer's upload control (it calls
// `attach` with the uploaded file's metadata) and `renderAttachments` previews a message's
// `attachments: [{file_id, name, size, content_type}]` (images inline, other files as links).

import type { Child } from "./dom";
import type { Attachment, Message } from "./types";

export interface AttachmentHost {
  /** Adds an uploaded file to the message being composed. */
  attach(file: Attachment): void;
  /** The token, for authenticated upload/download requests. */
  token: string;
}

/** The composer's attachment control, or null while uploads are not available. */
export function attachmentButton(_host: AttachmentHost): HTMLElement | null {
  return null;
}

/** A message's attachments (previews), or nothing. */
export function renderAttachments(m: Message): Child {
  if (!m.attachments?.length) return null;
  return null;
}
