//! Redis adapter for real-time fanout and the membership index the gateways read.
//!
//! Per workspace (all keys share the hash tag `{<workspace_id>}` so a workspace lives in one
//! cluster slot):
//! - `<ns>:{ws}:fanout`: stream of frames to deliver; gateways `XREAD` it, one read per gateway
//!   however many of its sockets are in the channel
//! - `<ns>:{ws}:eph`: stream of ephemeral frames (typing, presence), kept short and apart, so a
//!   burst of them never pushes events out of the window a resume replays from
//! - `<ns>:{ws}:fanout:seqs`: hash topic -> last published seq: makes publishing idempotent
//! - `<ns>:{ws}:mem:<channel>`: set of member user ids
//! - `<ns>:{ws}:uch:<user>`: set of the user's channel ids

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use redis::AsyncCommands;
use uuid::Uuid;

use confab_core::ports::{
    Backlog, BacklogLimits, BacklogScan, Fanout, FanoutEntry, FanoutItem, FanoutStream, PortResult, StreamErasure,
};

use super::error::{connection, port};
use std::collections::HashMap;

/// A workspace's fanout stream.
fn stream_key(namespace: &str, ws: &Uuid) -> String {
    format!("{namespace}:{{{ws}}}:fanout")
}

/// A workspace's stream of ephemeral frames.
fn ephemeral_key(namespace: &str, ws: &Uuid) -> String {
    format!("{namespace}:{{{ws}}}:eph")
}

/// Ephemeral frames a workspace's stream keeps: enough for a gateway that reads a moment late.
const EPHEMERAL_MAX_LEN: usize = 1_000;

/// A reader's position in a workspace: in its event stream, and in its ephemeral stream.
/// Written `<event id>;<ephemeral id>` (a position without `;` is an event id only).
#[derive(Debug, Clone, PartialEq)]
struct Position {
    events: String,
    ephemeral: String,
}

impl Position {
    fn parse(s: &str) -> Position {
        match s.split_once(';') {
            Some((events, ephemeral)) => Position { events: events.into(), ephemeral: ephemeral.into() },
            None => Position { events: s.into(), ephemeral: "$".into() },
        }
    }

    fn render(&self) -> String {
        format!("{};{}", self.events, self.ephemeral)
    }
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

// Removes the entries a `StreamErasure` names, among the next `ERASE_CHUNK` entries after an
// id (one call scans one chunk, so Redis is never held for a whole stream). KEYS: the stream.
// ARGV: topic, the needle, seq bound (exclusive), the first id to look at (inclusive, or
// `(id` exclusive), chunk size, the frame types (`,type,type,`). Returns {erased, last id read
// or "" at the stream's end}.
const ERASE: &str = r#"
local entries = redis.call('XRANGE', KEYS[1], ARGV[4], '+', 'COUNT', tonumber(ARGV[5]))
local erased, before = 0, tonumber(ARGV[3])
for _, e in ipairs(entries) do
  local f = {}
  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end
  if f['ch'] == ARGV[1] and string.find(ARGV[6], ',' .. (f['t'] or '') .. ',', 1, true)
      and tonumber(f['seq'] or '0') < before and string.find(f['f'] or '', ARGV[2], 1, true) then
    redis.call('XDEL', KEYS[1], e[1])
    erased = erased + 1
  end
end
if #entries < tonumber(ARGV[5]) then return {erased, ''} end
return {erased, entries[#entries][1]}
"#;

/// Entries one erasure call scans.
const ERASE_CHUNK: usize = 500;

#[derive(Clone)]
pub struct RedisFanout {
    client: redis::Client,
    conn: ConnectionManager,
    namespace: String,
    max_len: usize,
    script: redis::Script,
    erase: redis::Script,
}

impl RedisFanout {
    pub async fn connect(client: &redis::Client, namespace: &str, max_len: usize) -> PortResult<Self> {
        let conn = connection(client).await?;
        Ok(Self {
            client: client.clone(),
            conn,
            namespace: namespace.to_string(),
            max_len,
            script: redis::Script::new(PUBLISH),
            erase: redis::Script::new(ERASE),
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

    /// The position after the newest entries of a workspace's two streams.
    pub async fn last_id(&self, ws: &Uuid) -> redis::RedisResult<String> {
        let events = self.newest(&self.stream_key(ws)).await?;
        let ephemeral = self.newest(&ephemeral_key(&self.namespace, ws)).await?;
        Ok(Position { events, ephemeral }.render())
    }

    /// The id of a stream's newest entry, or `0-0`.
    async fn newest(&self, key: &str) -> redis::RedisResult<String> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply =
            redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(&mut conn).await?;
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
    pub async fn connect(client: &redis::Client, namespace: &str) -> redis::RedisResult<Self> {
        let conn = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await?;
        Ok(Self { conn, namespace: namespace.to_string() })
    }

    /// Blocks up to `block_ms` for entries after the given positions, in both streams of each
    /// workspace. Each entry's position covers everything returned before it too.
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
        let mut positions: HashMap<Uuid, Position> = from.iter().map(|(ws, p)| (*ws, Position::parse(p))).collect();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count).arg("BLOCK").arg(block_ms).arg("STREAMS");
        for (ws, _) in from {
            cmd.arg(stream_key(&self.namespace, ws)).arg(ephemeral_key(&self.namespace, ws));
        }
        for (ws, _) in from {
            let p = &positions[ws];
            cmd.arg(&p.events).arg(&p.ephemeral);
        }
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.conn).await?;
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(ws) = key.key.split('{').nth(1).and_then(|s| s.split('}').next()).and_then(|s| s.parse().ok())
            else {
                continue;
            };
            let ephemeral = key.key.ends_with(":eph");
            for entry in &key.ids {
                let p = positions.entry(ws).or_insert_with(|| Position::parse("0-0"));
                if ephemeral {
                    p.ephemeral = entry.id.clone();
                } else {
                    p.events = entry.id.clone();
                }
                let position = p.render();
                out.extend(parse_entry(ws, entry).map(|e| FanoutEntry { position, ..e }));
            }
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
    /// Scans the workspace's event stream newest first through a [`BacklogScan`], reading each
    /// topic's current seq from the idempotency hash. Pages are sized to what the scan may
    /// still read, so a resume never reads more than its budget.
    pub async fn backlog(
        &self,
        ws: &Uuid,
        after: &[(Uuid, i64)],
        limits: BacklogLimits,
    ) -> redis::RedisResult<Backlog> {
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
        let mut scan = BacklogScan::new(after, now, limits);
        let mut end = "+".to_string();
        while !scan.done() {
            let page = scan.remaining().min(BACKLOG_PAGE);
            let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(self.stream_key(ws))
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(page)
                .query_async(&mut conn)
                .await?;
            let Some(last) = reply.ids.last() else { break };
            end = format!("({}", last.id);
            for e in reply.ids.iter().filter_map(|entry| parse_entry(*ws, entry)) {
                if !scan.offer(&e) {
                    break;
                }
            }
            if reply.ids.len() < page {
                break;
            }
        }
        Ok(scan.finish())
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
    async fn erase(&self, ws: &Uuid, topic: &Uuid, erasure: &StreamErasure) -> PortResult<usize> {
        // entry ids are Redis's clock at publication, after the message's own time; a minute's
        // margin covers clocks that disagree
        let from = format!("{}-0", erasure.since_ms.saturating_sub(60_000).max(0));
        let types = format!(",{},", erasure.frame_types.join(","));
        let mut conn = self.conn.clone();
        let (mut from, mut erased, mut scanned) = (from, 0, 0);
        // chunk by chunk up to the stream's end, or its length (what it can hold)
        while scanned < self.max_len {
            let (n, last): (i64, String) = self
                .erase
                .key(self.stream_key(ws))
                .arg(topic.to_string())
                .arg(&erasure.needle)
                .arg(erasure.before_seq)
                .arg(&from)
                .arg(ERASE_CHUNK)
                .arg(&types)
                .invoke_async(&mut conn)
                .await
                .map_err(port)?;
            erased += n as usize;
            scanned += ERASE_CHUNK;
            if last.is_empty() {
                break;
            }
            from = format!("({last}");
        }
        Ok(erased)
    }
    async fn delete_workspace(&self, ws: &Uuid) -> PortResult<()> {
        // every key of a workspace (its streams, seqs, members, presence, rate limits) shares
        // the `{ws}` tag of this prefix
        let pattern = format!("{}*", self.prefix(ws));
        let mut conn = self.conn.clone();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut conn)
                .await
                .map_err(port)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.map_err(port)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
    async fn backlog(&self, ws: &Uuid, after: &[(Uuid, i64)], limits: BacklogLimits) -> PortResult<Backlog> {
        RedisFanout::backlog(self, ws, after, limits).await.map_err(port)
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
            .arg(ephemeral_key(&self.namespace, ws))
            .arg("MAXLEN")
            .arg("~")
            .arg(EPHEMERAL_MAX_LEN)
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
        Ok(Box::new(FanoutReader::connect(&self.client, &self.namespace).await.map_err(port)?))
    }
}

#[async_trait]
impl FanoutStream for FanoutReader {
    async fn read(&mut self, from: &[(Uuid, String)], block_ms: usize, count: usize) -> PortResult<Vec<FanoutEntry>> {
        FanoutReader::read(self, from, block_ms, count).await.map_err(port)
    }
}
