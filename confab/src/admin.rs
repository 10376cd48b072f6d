//! `confab admin`: a thin client of a gateway's admin API (on `gateway.admin_listen`) that prints
//! JSON. The key comes from `--admin-key`, `CONFAB_ADMIN_KEY`, or the embedded mode's data
//! directory.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Args)]
pub struct AdminArgs {
    /// Base URL of a gateway's admin listener (`gateway.admin_listen`).
    #[arg(long, env = "CONFAB_ADMIN_URL", default_value = "http://127.0.0.1:8090")]
    url: String,
    /// The admin key (`auth.admin_key` of the gateway); default: the one `confab serve`
    /// generated in `--data-dir`.
    #[arg(long, env = "CONFAB_ADMIN_KEY")]
    admin_key: Option<String>,
    /// The embedded mode's data directory, where its generated admin key is.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./confab-data")]
    data_dir: std::path::PathBuf,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a workspace.
    CreateWorkspace {
        #[arg(long)]
        name: String,
        #[arg(long)]
        retention_days: Option<u32>,
        /// Largest file its users may upload, in bytes (default: `files.max_bytes`).
        #[arg(long)]
        max_file_bytes: Option<u64>,
        /// Content types its users may upload, comma separated (`image/*,application/pdf`;
        /// default: `files.allowed_types`).
        #[arg(long, value_delimiter = ',')]
        file_types: Option<Vec<String>>,
        /// Bytes of shared files it may hold at once (default: `files.workspace_quota_bytes`).
        #[arg(long)]
        storage_quota_bytes: Option<u64>,
    },
    /// Create a user and print a token for them.
    CreateUser {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        name: String,
    },
    /// Mint another token for a user.
    Token {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        user: Uuid,
        #[arg(long)]
        ttl_secs: Option<i64>,
    },
    /// Revoke every token of a user issued up to now: their requests fail with
    /// `token_revoked` and their open sockets close with code 4003 within seconds.
    RevokeTokens {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        user: Uuid,
    },
    /// Deactivate a user: no token of theirs works, their sockets close (4003), no token is
    /// minted for them; their messages stay.
    DeactivateUser {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        user: Uuid,
    },
    /// Reactivate a user: tokens minted from now on work (older ones stay revoked).
    ReactivateUser {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        user: Uuid,
    },
    /// Change a workspace's retention (0: forever). A shorter one also erases, from the log,
    /// what falls out of the new window.
    SetRetention {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long, conflicts_with = "secs")]
        days: Option<u32>,
        #[arg(long)]
        secs: Option<u32>,
    },
    /// Delete a workspace: its tokens stop working and its sockets close at once; its rows,
    /// search documents, files, fanout streams, presence and devices go, and its key is
    /// destroyed, which erases its texts and file names from the log.
    DeleteWorkspace {
        #[arg(long)]
        workspace: Uuid,
    },
    /// Create a channel with members.
    CreateChannel {
        #[arg(long)]
        workspace: Uuid,
        #[arg(long)]
        name: String,
        #[arg(long)]
        private: bool,
        /// Repeat for each member.
        #[arg(long = "member")]
        members: Vec<Uuid>,
        #[arg(long)]
        creator: Option<Uuid>,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/');
    let mut method = reqwest::Method::POST;
    let (path, body) = match args.command {
        AdminCommand::CreateWorkspace { name, retention_days, max_file_bytes, file_types, storage_quota_bytes } => (
            "/admin/workspaces".to_string(),
            json!({
                "name": name, "retention_days": retention_days, "max_file_bytes": max_file_bytes,
                "file_types": file_types, "storage_quota_bytes": storage_quota_bytes,
            }),
        ),
        AdminCommand::CreateUser { workspace, name } => {
            (format!("/admin/workspaces/{workspace}/users"), json!({"name": name}))
        }
        AdminCommand::Token { workspace, user, ttl_secs } => {
            (format!("/admin/workspaces/{workspace}/users/{user}/tokens"), json!({"ttl_secs": ttl_secs}))
        }
        AdminCommand::RevokeTokens { workspace, user } => {
            (format!("/admin/workspaces/{workspace}/users/{user}/revoke-tokens"), json!({}))
        }
        AdminCommand::DeactivateUser { workspace, user } => {
            (format!("/admin/workspaces/{workspace}/users/{user}/deactivate"), json!({}))
        }
        AdminCommand::ReactivateUser { workspace, user } => {
            (format!("/admin/workspaces/{workspace}/users/{user}/reactivate"), json!({}))
        }
        AdminCommand::SetRetention { workspace, days, secs } => {
            if days.is_none() && secs.is_none() {
                bail!("give --days or --secs (0: keep messages forever)");
            }
            method = reqwest::Method::PUT;
            (
                format!("/admin/workspaces/{workspace}/retention"),
                json!({"retention_days": days, "retention_secs": secs}),
            )
        }
        AdminCommand::DeleteWorkspace { workspace } => {
            method = reqwest::Method::DELETE;
            (format!("/admin/workspaces/{workspace}"), json!({}))
        }
        AdminCommand::CreateChannel { workspace, name, private, members, creator } => (
            format!("/admin/workspaces/{workspace}/channels"),
            json!({"name": name, "is_private": private, "members": members, "creator": creator}),
        ),
    };
    let key = match &args.admin_key {
        Some(key) => key.clone(),
        None => {
            let path = args.data_dir.join(crate::embedded::ADMIN_KEY_FILE);
            let key = std::fs::read_to_string(&path).with_context(|| {
                format!("no admin key given (--admin-key or CONFAB_ADMIN_KEY), and none in {}", path.display())
            })?;
            key.trim().to_string()
        }
    };
    let resp = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("calling {base}{path}"))?;
    let status = resp.status();
    let value: Value = resp.json().await.context("reading the response")?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    if !status.is_success() {
        bail!("the gateway answered {status}");
    }
    Ok(())
}
