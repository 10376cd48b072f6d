//! The JSON bodies the HTTP API answers with, as OpenAPI schemas (`/api/openapi.json`). The
//! handlers build these bodies themselves; the schemas say what a client may rely on, and
//! schemathesis checks every answer against them in the test command (scripts/check-openapi.sh),
//! so a handler that drifts from its schema fails a test. Request bodies and query strings are
//! documented by the types the handlers parse them into.

use confab_core::event::ChannelKind;
use confab_core::files::Attachment;
use confab_core::presence::PresenceStatus;
use confab_core::protocol::MessageView;
use confab_core::push::Platform;
use confab_core::ErrorCode;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Every error: a typed code a client can act on, and a message for people.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// `GET /api/me`.
#[derive(ToSchema)]
pub struct Me {
    pub workspace_id: Uuid,
    pub workspace_name: Option<String>,
    pub user_id: Uuid,
    pub name: Option<String>,
    /// The channels the caller is a member of.
    pub channels: Vec<Uuid>,
}

/// `GET /api/channels`: a page of channels the caller can see.
#[derive(ToSchema)]
pub struct ChannelPage {
    pub channels: Vec<ChannelSummary>,
    /// Pass back as `after` for the next page; null on the last one.
    pub next_after: Option<Uuid>,
}

/// A channel in a listing; the read state only on channels the caller is a member of.
#[derive(ToSchema)]
pub struct ChannelSummary {
    pub channel_id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    pub is_private: bool,
    pub archived: bool,
    pub created_by: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
    pub member_count: u64,
    pub is_member: bool,
    pub last_seq: i64,
    pub last_read_seq: Option<i64>,
    pub unread_count: Option<u64>,
    pub mention_count: Option<u64>,
    /// There are more unread messages than counted (show "n+").
    pub more_unread: Option<bool>,
    /// A DM's members.
    pub members: Option<Vec<Uuid>>,
}

/// `GET /api/channels/{channel_id}`.
#[derive(ToSchema)]
pub struct ChannelDetail {
    pub channel_id: Uuid,
    pub name: String,
    pub kind: ChannelKind,
    pub is_private: bool,
    pub archived: bool,
    pub created_by: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
    pub members: Vec<Uuid>,
}

/// `GET /api/users`.
#[derive(ToSchema)]
pub struct UserList {
    pub users: Vec<UserEntry>,
}

#[derive(ToSchema)]
pub struct UserEntry {
    pub user_id: Uuid,
    pub name: String,
}

/// A page of history. An attachment whose file was deleted since carries `"deleted": true`.
#[derive(ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Newest-first pages: pass back as `cursor` for older messages (null: no more).
    pub next_cursor: Option<Uuid>,
    /// `after` pages: pass back as `after` for newer messages (null: no more).
    pub next_after: Option<Uuid>,
}

/// `GET .../replies`: a thread.
#[derive(ToSchema)]
pub struct Thread {
    pub parent: MessageView,
    pub replies: Vec<MessageView>,
    /// Pass back as `after` for more replies (null: no more).
    pub next_after: Option<Uuid>,
}

/// `GET /api/search`.
#[derive(ToSchema)]
pub struct SearchResults {
    /// Matches in all, beyond this page.
    pub total: u64,
    pub messages: Vec<SearchHit>,
    /// Pass back as `offset` for the next page (null: no more).
    pub next_offset: Option<u64>,
}

#[derive(ToSchema)]
pub struct SearchHit {
    pub message_id: Uuid,
    pub channel_id: Uuid,
    pub channel_name: Option<String>,
    pub user_id: Uuid,
    /// Unix milliseconds.
    pub ts: i64,
    pub text: String,
    pub thread_ts: Option<Uuid>,
    pub score: f32,
    /// The best fragment, HTML-escaped, matched terms in `<em>`: safe to insert as HTML.
    pub highlight: String,
}

/// `GET /api/presence`.
#[derive(ToSchema)]
pub struct PresenceLookup {
    /// Each asked-for user id and their presence.
    pub users: BTreeMap<String, PresenceStatus>,
    /// Users of the workspace online now.
    pub online_count: u64,
}

/// A registered device.
#[derive(ToSchema)]
pub struct Device {
    pub device_id: Uuid,
    pub platform: Platform,
}

/// `GET /api/devices`.
#[derive(ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// `POST /api/files`: where to upload the bytes, and the token that completes the upload.
#[derive(ToSchema)]
pub struct UploadGrant {
    pub file_id: Uuid,
    pub upload: UploadTarget,
    /// Give it to `POST /api/files/{file_id}/complete`.
    pub upload_token: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// The request that uploads the file: its method, URL and the headers it must carry.
#[derive(ToSchema)]
pub struct UploadTarget {
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
}

/// `POST /api/files/{file_id}/complete`: the file is shared in its channel.
#[derive(ToSchema)]
pub struct FileShared {
    pub file: Attachment,
    pub channel_id: Uuid,
    pub seq: i64,
}

/// `GET /api/files/{file_id}`: the file and a download URL.
#[derive(ToSchema)]
pub struct FileDownload {
    pub file_id: Uuid,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub channel_id: Uuid,
    pub uploader: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
    pub url: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// `DELETE /api/files/{file_id}`.
#[derive(ToSchema)]
pub struct FileDeleted {
    pub deleted: bool,
    /// The deletion's seq in the channel; absent when the file was already deleted.
    pub seq: Option<i64>,
}
