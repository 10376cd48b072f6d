//! The typed error codes clients see, on the WebSocket (`error` frames) and over HTTP
//! (`{"error": {"code": ..}}`), and in ingest's rejections.

use serde::{Deserialize, Serialize};

/// Typed error codes shared by the WebSocket and HTTP APIs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedFrame,
    UnknownType,
    FrameTooLarge,
    InvalidField,
    TextTooLong,
    EmptyText,
    ChannelNotFound,
    NotAMember,
    ChannelPrivate,
    ChannelArchived,
    UserNotFound,
    MessageNotFound,
    MessageDeleted,
    TooManyReactions,
    /// No such file in the channel (or workspace), or not yours to see.
    FileNotFound,
    /// The file was deleted: no more links for it.
    FileDeleted,
    /// Over the workspace's size limit.
    FileTooLarge,
    /// The workspace's shared files would take more than its storage quota.
    StorageQuotaExceeded,
    /// A content type the workspace does not accept.
    FileTypeNotAllowed,
    /// The upload is missing or its size differs from the declared one.
    UploadIncomplete,
    /// A link whose signature does not match, or that has expired.
    InvalidSignature,
    LinkExpired,
    Conflict,
    RateLimited,
    /// The user holds as many connections as one user may (`gateway.max_connections_per_user`).
    TooManyConnections,
    Unauthorized,
    TokenExpired,
    /// The user's tokens were revoked (`confab admin revoke-tokens`): get a new one.
    TokenRevoked,
    /// The user's account is deactivated (`confab admin deactivate-user`): no token of theirs
    /// works until an admin reactivates it.
    UserDeactivated,
    /// The workspace was deleted (`confab admin delete-workspace`).
    WorkspaceDeleted,
    Forbidden,
    NotFound,
    Unavailable,
    /// A `resume` cannot be served now (the fanout store is unreachable): fetch what was missed
    /// over HTTP history instead.
    ResumeUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::ChannelNotFound => "channel_not_found",
            ErrorCode::NotAMember => "not_a_member",
            ErrorCode::ChannelPrivate => "channel_private",
            ErrorCode::ChannelArchived => "channel_archived",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::MessageNotFound => "message_not_found",
            ErrorCode::MessageDeleted => "message_deleted",
            ErrorCode::TooManyReactions => "too_many_reactions",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::FileDeleted => "file_deleted",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::StorageQuotaExceeded => "storage_quota_exceeded",
            ErrorCode::FileTypeNotAllowed => "file_type_not_allowed",
            ErrorCode::UploadIncomplete => "upload_incomplete",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::LinkExpired => "link_expired",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenRevoked => "token_revoked",
            ErrorCode::UserDeactivated => "user_deactivated",
            ErrorCode::WorkspaceDeleted => "workspace_deleted",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ResumeUnavailable => "resume_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}
