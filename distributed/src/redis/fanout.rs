//! Redis adapter for real-time fanout and the membership index the gateways read.
//!
//! Per workspace (all keys share the hash tag `{<workspace_id>}` so a workspace lives in one
//! cluster slot):
//! - `<ns>:{ws}:fanout`: stream of frames to deliver; gateways `XREAD` it, one read per gateway
//!   however many of its sockets are in the channel
//! - `<ns>:{ws}:fanout:seqs`: hash topic -> last published seq: makes publishing idempotent
//! - `<ns>:{ws}:mem:<channel>`: set of member user ids
//! - `<ns>:{ws}:uch:<user>`: set of the user's channel ids

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use redis::AsyncCommands;
use uuid::Uuid;

use confab_core::ports::{Backlog, Fanout, FanoutEntry, FanoutItem, FanoutStream, PortResult};

use super::error::{connection, port};
use std::collections::HashMap;

/// A workspace's fanout stream.
fn stream_key(namespace: &str, ws: &Uuid) -> String {
    format!("{namespace}:{{{ws}}}:fanout")
}

// ARGV: topic, seq, frame, max stream length, key prefix, added (csv), ts, removed (csv),
// number of added users n, frame type, then n added user ids, then the removed user ids
const PUBLISH: &str = r#"
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local n = tonumber(ARGV[9])
for i = 11, 10 + n do
  redis.call('SADD', ARGV[5] .. 'mem:' .. ARGV[1], ARGV[i])
  redis.call('SADD', ARGV[5] .. 'uch:' .. ARGV[i], ARGV[1])
end
for i = 11 + n, #ARGV do
  redis.call('SREM', ARGV[5] .. 'mem:' .. ARGV[1], ARGV[i])
  redis.call('SREM', ARGV[5] .. 'uch:' .. ARGV[i], ARGV[1])
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'ch', ARGV[1], 'seq', ARGV[2], 'f', ARGV[3], 'add', ARGV[6], 'ts', ARGV[7], 'rm', ARGV[8], 't', ARGV[10])
return 1
"#;

#[derive(Clone)]
pub struct RedisFanout {
    url: String,
    conn: ConnectionManager,
    namespace: String,
    max_len: usize,
    script: redis::Script,
}

impl RedisFanout {
    pub async fn connect(url: &str, namespace: &str, max_len: usize) -> PortResult<Self> {
        let conn = connection(url).await?;
        Ok(Self {
            url: url.to_string(),
            conn,
            namespace: namespace.to_string(),
            max_len,
            script: redis::Script::new(PUBLISH),
        })
    }

    fn prefix(&self, ws: &Uuid) -> String {
        format!("{}:{{{ws}}}:", self.namespace)
    }

    pub fn stream_key(&self, ws: &Uuid) -> String {
        stream_key(&self.namespace, ws)
    }

    /// Publishes items in one round trip; an item whose seq was already published is skipped,
    /// so replaying the log publishes nothing twice. Returns how many were new.
    pub async fn publish(&self, items: &[FanoutItem]) -> redis::RedisResult<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for it in items {
            let prefix = self.prefix(&it.workspace_id);
            let add = it.add_members.iter().map(|u| u.to_string()).collect::<Vec<_>>();
            let rm = it.remove_members.iter().map(|u| u.to_string()).collect::<Vec<_>>();
            // EVALSHA with the script's sha; loaded below if Redis does not know it yet
            pipe.cmd("EVALSHA")
                .arg(self.script.get_hash())
                .arg(2)
                .arg(format!("{prefix}fanout"))
                .arg(format!("{prefix}fanout:seqs"))
                .arg(it.topic_id.to_string())
                .arg(it.seq)
                .arg(&it.frame_json)
                .arg(self.max_len)
                .arg(&prefix)
                .arg(add.join(","))
                .arg(it.ts)
                .arg(rm.join(","))
                .arg(add.len())
                .arg(&it.frame_type);
            for a in add.iter().chain(&rm) {
                pipe.arg(a);
            }
        }
        let mut conn = self.conn.clone();
        let result: Result<Vec<i64>, redis::RedisError> = pipe.query_async(&mut conn).await;
        let added = match result {
            Ok(v) => v,
            // the server lost (or never had) the script: load it and run the batch again
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(PUBLISH).query_async(&mut conn).await?;
                pipe.query_async(&mut conn).await?
            }
            Err(e) => return Err(e),
        };
        Ok(added.iter().filter(|&&n| n == 1).count())
    }

    pub async fn user_channels(&self, ws: &Uuid, user: &Uuid) -> redis::RedisResult<Vec<Uuid>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.smembers(format!("{}uch:{user}", self.prefix(ws))).await?;
        Ok(ids.iter().filter_map(|s| s.parse().ok()).collect())
    }

    pub async fn is_member(&self, ws: &Uuid, ch: &Uuid, user: &Uuid) -> redis::RedisResult<bool> {
        let mut conn = self.conn.clone();
        conn.sismember(format!("{}mem:{ch}", self.prefix(ws)), user.to_string()).await
    }

    /// The id of the newest entry in a workspace's stream, or `0-0`.
    pub async fn last_id(&self, ws: &Uuid) -> redis::RedisResult<String> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.stream_key(ws))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.first().map(|e| e.id.clone()).unwrap_or_else(|| "0-0".into()))
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// Reads new entries from several workspaces' streams (`XREAD BLOCK`). Uses its own connection,
/// since a blocking read holds it.
pub struct FanoutReader {
    conn: redis::aio::MultiplexedConnection,
    namespace: String,
}

impl FanoutReader {
    pub async fn connect(url: &str, namespace: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let conn = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await?;
        Ok(Self { conn, namespace: namespace.to_string() })
    }

    /// Blocks up to `block_ms` for entries after the given ids.
    pub async fn read(
        &mut self,
        from: &[(Uuid, String)],
        block_ms: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<FanoutEntry>> {
        if from.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(block_ms as u64)).await;
            return Ok(vec![]);
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count).arg("BLOCK").arg(block_ms).arg("STREAMS");
        for (ws, _) in from {
            cmd.arg(stream_key(&self.namespace, ws));
        }
        for (_, id) in from {
            cmd.arg(id);
        }
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn).await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(ws) = key.key.split('{').nth(1).and_then(|s| s.split('}').next()).and_then(|s| s.parse().ok())
            else {
                continue;
            };
            out.extend(key.ids.iter().filter_map(|entry| parse_entry(ws, entry)));
        }
        Ok(out)
    }
}

/// One stream entry as the gateways see it; `None` for an entry this build cannot read.
fn parse_entry(ws: Uuid, entry: &redis::streams::StreamId) -> Option<FanoutEntry> {
    let get = |f: &str| entry.map.get(f).and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
    let (ch, seq, frame) = (get("ch")?, get("seq")?, get("f")?);
    let (topic_id, seq) = (ch.parse().ok()?, seq.parse().ok()?);
    let users = |f: &str| get(f).map(|a| a.split(',').filter_map(|s| s.parse().ok()).collect()).unwrap_or_default();
    let (add_members, remove_members) = (users("add"), users("rm"));
    let ts = get("ts").and_then(|t| t.parse().ok()).unwrap_or(0);
    let ephemeral_from = get("eph").and_then(|u| u.parse().ok());
    Some(FanoutEntry {
        workspace_id: ws,
        position: entry.id.clone(),
        topic_id,
        frame_type: get("t").unwrap_or_default(),
        seq,
        frame_json: frame,
        add_members,
        remove_members,
        ts,
        ephemeral_from,
    })
}

/// Entries read per step when a resume scans a stream backwards.
const BACKLOG_PAGE: usize = 500;

impl RedisFanout {
    /// Scans the workspace's stream newest first until every channel reaches its position (or
    /// the stream's start), reading each channel's current seq from the idempotency hash.
    pub async fn backlog(&self, ws: &Uuid, after: &[(Uuid, i64)]) -> redis::RedisResult<Backlog> {
        if after.is_empty() {
            return Ok(Backlog::default());
        }
        let mut conn = self.conn.clone();
        let fields: Vec<String> = after.iter().map(|(c, _)| c.to_string()).collect();
        let seqs: Vec<Option<i64>> = redis::cmd("HMGET")
            .arg(format!("{}fanout:seqs", self.prefix(ws)))
            .arg(&fields)
            .query_async(&mut conn)
            .await?;
        let now: HashMap<Uuid, i64> = after.iter().zip(seqs).map(|((c, _), s)| (*c, s.unwrap_or(0))).collect();
        let wanted: HashMap<Uuid, i64> = after.iter().copied().collect();
        let mut lowest: HashMap<Uuid, i64> = HashMap::new();
        let mut scanned = Vec::new();
        let mut end = "+".to_string();
        while !Backlog::covered(after, &now, &lowest) {
            let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(self.stream_key(ws))
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(BACKLOG_PAGE)
                .query_async(&mut conn)
                .await?;
            let Some(last) = reply.ids.last() else { break };
            end = format!("({}", last.id);
            let n = reply.ids.len();
            for e in reply.ids.iter().filter_map(|entry| parse_entry(*ws, entry)) {
                if e.ephemeral_from.is_none() && wanted.contains_key(&e.topic_id) {
                    let l = lowest.entry(e.topic_id).or_insert(e.seq);
                    *l = (*l).min(e.seq);
                }
                scanned.push(e);
            }
            if n < BACKLOG_PAGE {
                break;
            }
        }
        Ok(Backlog::from_scan(after, &now, scanned))
    }
}

#[async_trait]
impl Fanout for RedisFanout {
    async fn publish(&self, items: &[FanoutItem]) -> PortResult<usize> {
        RedisFanout::publish(self, items).await.map_err(port)
    }
    async fn user_channels(&self, ws: &Uuid, user: &Uuid) -> PortResult<Vec<Uuid>> {
        RedisFanout::user_channels(self, ws, user).await.map_err(port)
    }
    async fn is_member(&self, ws: &Uuid, ch: &Uuid, user: &Uuid) -> PortResult<bool> {
        RedisFanout::is_member(self, ws, ch, user).await.map_err(port)
    }
    async fn last_id(&self, ws: &Uuid) -> PortResult<String> {
        RedisFanout::last_id(self, ws).await.map_err(port)
    }
    async fn backlog(&self, ws: &Uuid, after: &[(Uuid, i64)]) -> PortResult<Backlog> {
        RedisFanout::backlog(self, ws, after).await.map_err(port)
    }
    async fn publish_ephemeral(
        &self,
        ws: &Uuid,
        ch: &Uuid,
        from: &Uuid,
        frame_type: &str,
        frame_json: &str,
    ) -> PortResult<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(self.stream_key(ws))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg("ch")
            .arg(ch.to_string())
            .arg("seq")
            .arg(0)
            .arg("f")
            .arg(frame_json)
            .arg("eph")
            .arg(from.to_string())
            .arg("t")
            .arg(frame_type)
            .query_async(&mut conn)
            .await
            .map_err(port)?;
        Ok(())
    }
    async fn ping(&self) -> PortResult<()> {
        RedisFanout::ping(self).await.map_err(port)
    }
    async fn reader(&self) -> PortResult<Box<dyn FanoutStream>> {
        Ok(Box::new(FanoutReader::connect(&self.url, &self.namespace).await.map_err(port)?))
    }
}

#[async_trait]
impl FanoutStream for FanoutReader {
    async fn read(&mut self, from: &[(Uuid, String)], block_ms: usize, count: usize) -> PortResult<Vec<FanoutEntry>> {
        FanoutReader::read(self, from, block_ms, count).await.map_err(port)
    }
}
