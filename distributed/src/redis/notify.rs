//! Redis storage for the notifier. Per workspace: `<ns>:{ws}:dev:<user>` (hash device ->
//! address) and `<ns>:{ws}:prefs` (hash user -> preferences). The outbox: `<ns>:outbox` (sorted
//! set id -> due ms) and `<ns>:outbox:items` (hash id -> item), claimed by one script that moves
//! each claimed id's due time to its lease's end. Durable as far as Redis is
//! (run it with AOF for the notifier).

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use uuid::Uuid;

use confab_core::ports::{NotifyStore, OutboxItem, PortResult};

use super::error::{connection, port};

/// Claims due outbox items: KEYS = the due set and the items hash; ARGV = now, the lease's
/// end, the most to claim. Each claimed id is due again at the lease's end; an id without an
/// item (removed meanwhile) leaves the due set. Returns the items' JSON.
const CLAIM: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local item = redis.call('HGET', KEYS[2], id)
  if item then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, item)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"#;

#[derive(Clone)]
pub struct RedisNotify {
    conn: ConnectionManager,
    namespace: String,
    claim: redis::Script,
}

impl RedisNotify {
    pub async fn connect(client: &redis::Client, namespace: &str) -> PortResult<Self> {
        Ok(Self { conn: connection(client).await?, namespace: namespace.to_string(), claim: redis::Script::new(CLAIM) })
    }
    fn ws(&self, ws: &Uuid) -> String {
        format!("{}:{{{ws}}}:", self.namespace)
    }
    fn outbox(&self) -> (String, String) {
        (format!("{}:outbox", self.namespace), format!("{}:outbox:items", self.namespace))
    }
}

#[async_trait]
impl NotifyStore for RedisNotify {
    async fn put_device(&self, ws: Uuid, user: Uuid, device_id: Uuid, address: &str) -> PortResult<()> {
        let mut c = self.conn.clone();
        c.hset(format!("{}dev:{user}", self.ws(&ws)), device_id.to_string(), address).await.map_err(port)
    }
    async fn devices(&self, ws: Uuid, user: Uuid) -> PortResult<Vec<(Uuid, String)>> {
        let mut c = self.conn.clone();
        let all: std::collections::HashMap<String, String> =
            c.hgetall(format!("{}dev:{user}", self.ws(&ws))).await.map_err(port)?;
        Ok(all.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect())
    }
    async fn remove_device(&self, ws: Uuid, user: Uuid, device_id: Uuid) -> PortResult<bool> {
        let mut c = self.conn.clone();
        let n: i64 = c.hdel(format!("{}dev:{user}", self.ws(&ws)), device_id.to_string()).await.map_err(port)?;
        Ok(n > 0)
    }
    async fn put_prefs(&self, ws: Uuid, user: Uuid, prefs: &str) -> PortResult<()> {
        let mut c = self.conn.clone();
        c.hset(format!("{}prefs", self.ws(&ws)), user.to_string(), prefs).await.map_err(port)
    }
    async fn prefs(&self, ws: Uuid, user: Uuid) -> PortResult<Option<String>> {
        let mut c = self.conn.clone();
        c.hget(format!("{}prefs", self.ws(&ws)), user.to_string()).await.map_err(port)
    }
    async fn prefs_many(&self, ws: Uuid, users: &[Uuid]) -> PortResult<Vec<Option<String>>> {
        if users.is_empty() {
            return Ok(vec![]);
        }
        let mut c = self.conn.clone();
        let fields: Vec<String> = users.iter().map(Uuid::to_string).collect();
        redis::cmd("HMGET").arg(format!("{}prefs", self.ws(&ws))).arg(&fields).query_async(&mut c).await.map_err(port)
    }
    async fn enqueue(&self, items: &[OutboxItem]) -> PortResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (zset, hash) = self.outbox();
        let mut pipe = redis::pipe();
        for it in items {
            pipe.cmd("HSETNX").arg(&hash).arg(&it.id).arg(serde_json::to_string(it).expect("item serializes")).ignore();
            pipe.cmd("ZADD").arg(&zset).arg("NX").arg(it.due_ms).arg(&it.id).ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await.map_err(port)
    }
    async fn claim(&self, now_ms: i64, lease_ms: i64, limit: usize) -> PortResult<Vec<OutboxItem>> {
        let (zset, hash) = self.outbox();
        let mut c = self.conn.clone();
        let raw: Vec<String> = self
            .claim
            .key(zset)
            .key(hash)
            .arg(now_ms)
            .arg(now_ms.saturating_add(lease_ms))
            .arg(limit)
            .invoke_async(&mut c)
            .await
            .map_err(port)?;
        Ok(raw.into_iter().filter_map(|s| serde_json::from_str(&s).ok()).collect())
    }
    async fn reschedule(&self, item: &OutboxItem) -> PortResult<()> {
        let (zset, hash) = self.outbox();
        let mut c = self.conn.clone();
        redis::pipe()
            .cmd("HSET")
            .arg(&hash)
            .arg(&item.id)
            .arg(serde_json::to_string(item).expect("item serializes"))
            .ignore()
            .cmd("ZADD")
            .arg(&zset)
            .arg(item.due_ms)
            .arg(&item.id)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(port)
    }
    async fn remove(&self, id: &str) -> PortResult<()> {
        let (zset, hash) = self.outbox();
        let mut c = self.conn.clone();
        redis::pipe()
            .cmd("ZREM")
            .arg(&zset)
            .arg(id)
            .ignore()
            .cmd("HDEL")
            .arg(&hash)
            .arg(id)
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(port)
    }
}
