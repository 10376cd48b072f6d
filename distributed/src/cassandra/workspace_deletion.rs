//! Deleting a workspace from Cassandra: its directory (record, users, push preferences) and
//! what the timeline projection holds of it. Rare and admin-driven, so the statements are
//! prepared per call. Partitions are found from the workspace's own rows: channels (and
//! their members, whose read markers go), each channel's messages (their thread partitions and
//! attached files), and the storage ledger (the files still counted).

use confab_core::ports::PortResult;
use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::value::CqlTimeuuid;
use std::collections::BTreeSet;
use uuid::Uuid;

use super::error::CqlResultExt;

/// Runs one statement.
async fn run(session: &Session, cql: String, values: impl scylla::serialize::row::SerializeRow) -> PortResult<()> {
    session.query_unpaged(cql, values).await.or_port("deleting a workspace")?;
    Ok(())
}

/// Every row a paged query answers.
async fn rows<T>(
    session: &Session,
    cql: String,
    values: impl scylla::serialize::row::SerializeRow,
) -> PortResult<Vec<T>>
where
    T: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + 'static,
{
    let pager = session.query_iter(cql, values).await.or_port("deleting a workspace")?;
    pager.rows_stream::<T>().or_port("deleting a workspace")?.try_collect().await.or_port("deleting a workspace")
}

/// The workspace's record, users, their push preferences and deactivations (all but the
/// workspace-wide marker that keeps its tokens refused).
pub async fn delete_directory(session: &Session, ks: &str, ws: Uuid) -> PortResult<()> {
    let deactivated: Vec<(Uuid,)> =
        rows(session, format!("SELECT user_id FROM {ks}.deactivated_users WHERE workspace_id = ?"), (ws,)).await?;
    for (user,) in deactivated.into_iter().filter(|(u,)| !u.is_nil()) {
        run(session, format!("DELETE FROM {ks}.deactivated_users WHERE workspace_id = ? AND user_id = ?"), (ws, user))
            .await?;
    }
    for table in ["users", "push_prefs", "workspaces"] {
        run(session, format!("DELETE FROM {ks}.{table} WHERE workspace_id = ?"), (ws,)).await?;
    }
    Ok(())
}

/// What the timeline projection holds of the workspace.
pub async fn delete_timeline(session: &Session, ks: &str, ws: Uuid) -> PortResult<()> {
    type ChannelRow = (Uuid, Option<Vec<Uuid>>);
    let channels: Vec<ChannelRow> =
        rows(session, format!("SELECT channel_id, members FROM {ks}.channels WHERE workspace_id = ?"), (ws,)).await?;
    let mut users = BTreeSet::new();
    let mut files: BTreeSet<Uuid> = BTreeSet::new();
    for (ch, members) in &channels {
        users.extend(members.iter().flatten().copied());
        delete_channel(session, ks, ws, *ch, &mut files).await?;
    }
    let directory: Vec<(Uuid,)> =
        rows(session, format!("SELECT user_id FROM {ks}.users WHERE workspace_id = ?"), (ws,)).await?;
    users.extend(directory.into_iter().map(|(u,)| u));
    for user in users {
        run(session, format!("DELETE FROM {ks}.read_markers WHERE workspace_id = ? AND user_id = ?"), (ws, user))
            .await?;
    }
    let counted: Vec<(Uuid,)> =
        rows(session, format!("SELECT file_id FROM {ks}.storage_ledger WHERE workspace_id = ?"), (ws,)).await?;
    files.extend(counted.into_iter().map(|(f,)| f).filter(|f| !f.is_nil()));
    for file in files {
        run(session, format!("DELETE FROM {ks}.files WHERE workspace_id = ? AND file_id = ?"), (ws, file)).await?;
    }
    run(session, format!("DELETE FROM {ks}.storage_ledger WHERE workspace_id = ?"), (ws,)).await?;
    run(session, format!("DELETE FROM {ks}.channels WHERE workspace_id = ?"), (ws,)).await
}

/// One channel's messages, threads, pins and summary; the files its messages carried are added
/// to `files`.
async fn delete_channel(session: &Session, ks: &str, ws: Uuid, ch: Uuid, files: &mut BTreeSet<Uuid>) -> PortResult<()> {
    type MessageRow = (Option<CqlTimeuuid>, Option<Vec<std::collections::HashMap<String, String>>>);
    let messages: Vec<MessageRow> = rows(
        session,
        format!("SELECT thread_ts, attachments FROM {ks}.messages WHERE workspace_id = ? AND channel_id = ?"),
        (ws, ch),
    )
    .await?;
    let mut threads = BTreeSet::new();
    for (thread_ts, attachments) in messages {
        threads.extend(thread_ts.map(Uuid::from));
        files.extend(attachments.iter().flatten().filter_map(|a| a.get("file_id")?.parse::<Uuid>().ok()));
    }
    for thread_ts in threads {
        let cql =
            format!("DELETE FROM {ks}.thread_replies WHERE workspace_id = ? AND channel_id = ? AND thread_ts = ?");
        run(session, cql, (ws, ch, CqlTimeuuid::from(thread_ts))).await?;
    }
    for table in ["messages", "pins", "channel_activity"] {
        run(session, format!("DELETE FROM {ks}.{table} WHERE workspace_id = ? AND channel_id = ?"), (ws, ch)).await?;
    }
    Ok(())
}
