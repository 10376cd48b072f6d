// Files over HTTP: uploads (grant, then the bytes PUT to the URL the grant names with progress,
// then complete) and download URLs. Download URLs are short-lived: each is kept until shortly
// before its `expires_at` and then asked for again; a file found deleted (410) is remembered so
// that it is not asked for again.

import { ConfabError, type ConfabHttp } from "@confab/client";
import type { Attachment, UploadGrant, Uuid } from "./types";

export interface FileLink {
  url: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** How long a download URL is asked for (the server's maximum). */
const LINK_SECS = 300;
/** A cached URL is used only while it has at least this long to live. */
const LINK_MARGIN_MS = 20_000;

const BY_EXTENSION: Record<string, string> = {
  txt: "text/plain", log: "text/plain", md: "text/markdown", markdown: "text/markdown", csv: "text/csv", json: "application/json",
  pdf: "application/pdf", zip: "application/zip", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif",
  webp: "image/webp", svg: "image/svg+xml", mp4: "video/mp4", webm: "video/webm", mp3: "audio/mpeg", wav: "audio/wav",
};

/** The type to declare for a file: the browser's, else by extension, else application/octet-stream
 * (which the server refuses, naming the types it takes). */
export function contentTypeOf(file: File): string {
  if (file.type) return file.type;
  const ext = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toLowerCase();
  return (ext && BY_EXTENSION[ext]) || "application/octet-stream";
}

export const aborted = () => new DOMException("The upload was cancelled.", "AbortError");

export class Files {
  private readonly links = new Map<Uuid, FileLink>();
  private readonly asking = new Map<Uuid, Promise<FileLink>>();
  private readonly gone = new Map<Uuid, ConfabError>();

  constructor(private readonly api: ConfabHttp) {}

  /** A download URL: the cached one while it is good for a while yet, else a new one. */
  link(fileId: Uuid, fresh = false): Promise<FileLink> {
    const gone = this.gone.get(fileId);
    if (gone) return Promise.reject(gone);
    const cached = this.links.get(fileId);
    if (!fresh && cached && cached.expiresAt - LINK_MARGIN_MS > Date.now()) return Promise.resolve(cached);
    const asking = this.asking.get(fileId); // one request at a time per file (and it is fresh)
    if (asking) return asking;
    const p = this.api
      .file(fileId, LINK_SECS)
      .then(
        (f) => {
          // `expires_at` is in seconds (created_at is in milliseconds): accept either
          const link = { url: f.url, expiresAt: f.expires_at < 1e12 ? f.expires_at * 1000 : f.expires_at };
          this.links.set(fileId, link);
          return link;
        },
        (e) => {
          if (e instanceof ConfabError && e.status === 410) this.markGone(fileId, e);
          throw e;
        },
      )
      .finally(() => this.asking.delete(fileId));
    this.asking.set(fileId, p);
    return p;
  }

  /** The file was revoked (`file:deleted`, or 410). */
  markGone(fileId: Uuid, e = new ConfabError("file_deleted", "the file was deleted", { status: 410 })): void {
    this.links.delete(fileId);
    this.gone.set(fileId, e);
  }

  isGone(fileId: Uuid): boolean {
    return this.gone.has(fileId);
  }

  /** Grant, PUT the bytes (reporting bytes sent), complete. Rejects with a ConfabError carrying the
   * server's code and message, or an AbortError when `signal` fires. */
  async upload(channelId: Uuid, file: File, onProgress: (sent: number) => void, signal: AbortSignal): Promise<Attachment> {
    const grant = await this.api.grantUpload(channelId, { name: file.name, size: file.size, content_type: contentTypeOf(file) });
    if (signal.aborted) throw aborted();
    await put(grant, file, onProgress, signal);
    if (signal.aborted) throw aborted();
    return this.api.completeUpload(grant.file_id, grant.upload_token);
  }

  async remove(fileId: Uuid): Promise<void> {
    await this.api.deleteFile(fileId);
    this.markGone(fileId);
  }
}

/** The PUT, with XMLHttpRequest for its upload progress events. */
function put(grant: UploadGrant, file: File, onProgress: (sent: number) => void, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(grant.upload.method || "PUT", grant.upload.url);
    for (const [k, v] of Object.entries(grant.upload.headers ?? {})) {
      if (!/^(content-length|host|connection)$/i.test(k)) xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(storageError(xhr)));
    xhr.onerror = () => reject(new ConfabError("network", "the upload could not reach the file storage", { status: 0 }));
    xhr.onabort = () => reject(aborted());
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}

/** The storage's refusal: the gateway's JSON error, or S3's XML one. */
function storageError(xhr: XMLHttpRequest): ConfabError {
  const text = xhr.responseText ?? "";
  try {
    const err = JSON.parse(text)?.error;
    if (err?.code) return new ConfabError(err.code, err.message ?? "", { status: xhr.status });
  } catch {
    /* not JSON */
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  return new ConfabError(code ?? `http_${xhr.status}`, message ?? (xhr.statusText || "the upload was refused"), { status: xhr.status });
}
