//! The JSON bodies the admin API answers with, as OpenAPI schemas (`/admin/openapi.json` on
//! the admin listener). The handlers build them; schemathesis checks every answer against
//! these in the test command (tests/tests/openapi.rs), so code and document cannot drift.

use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /admin/workspaces`.
#[derive(ToSchema)]
pub struct WorkspaceCreated {
    pub workspace_id: Uuid,
    pub name: String,
    /// 0: messages are kept forever.
    pub retention_secs: i32,
    /// 0: the configured `files.max_bytes`.
    pub max_file_bytes: i64,
    /// Empty: the configured `files.allowed_types`.
    pub file_types: Vec<String>,
    /// 0: the configured `files.workspace_quota_bytes`.
    pub storage_quota_bytes: i64,
}

/// `POST /admin/workspaces/{ws}/users`: the user and a first token.
#[derive(ToSchema)]
pub struct UserCreated {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// `POST .../tokens`.
#[derive(ToSchema)]
pub struct TokenMinted {
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// `POST .../revoke-tokens`.
#[derive(ToSchema)]
pub struct TokensRevoked {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    /// Tokens issued up to this second (Unix) no longer work.
    pub revoked_before: i64,
}

/// `POST .../deactivate` and `.../reactivate`.
#[derive(ToSchema)]
pub struct UserState {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub deactivated: bool,
}

/// `PUT /admin/workspaces/{ws}/retention`.
#[derive(ToSchema)]
pub struct RetentionChanged {
    pub workspace_id: Uuid,
    pub retention_secs: i32,
    pub previous_retention_secs: i32,
}

/// `DELETE /admin/workspaces/{ws}`: accepted; the projections' part follows from the log.
#[derive(ToSchema)]
pub struct WorkspaceDeleted {
    pub workspace_id: Uuid,
    pub deleted: bool,
    /// Users the workspace had.
    pub users: u64,
}

/// `POST /admin/workspaces/{ws}/channels`.
#[derive(ToSchema)]
pub struct ChannelCreated {
    pub workspace_id: Uuid,
    pub channel_id: Uuid,
    pub name: String,
    pub is_private: bool,
    /// The channel's creation event's seq.
    pub seq: i64,
}

/// `POST /admin/keys/open`: each box's field, opened.
#[derive(ToSchema)]
pub struct OpenedFields {
    pub workspace_id: Uuid,
    pub fields: Vec<OpenedField>,
}

/// One field: its `text`, or `redacted: true` when its key was destroyed, or an `error` for a
/// box that does not open (a wrong nonce or ciphertext).
#[derive(ToSchema)]
pub struct OpenedField {
    pub key_id: Uuid,
    pub field: String,
    pub text: Option<String>,
    pub redacted: Option<bool>,
    pub error: Option<String>,
}
