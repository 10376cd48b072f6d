//! Redis presence. Per workspace (hash tag `{ws}`, one cluster slot):
//! - `<ns>:{ws}:p:online`: sorted set user -> latest device expiry (ms): the online count is one
//!   `ZCOUNT`, no key scan
//! - `<ns>:{ws}:p:c:<user>`: sorted set device -> expiry (ms)
//! - `<ns>:{ws}:p:s:<user>`: hash device -> `a`ctive / a`w`ay (`ga` / `gw` once it left and is in
//!   its grace period), and `_` -> the last status announced for the user (so each transition
//!   is reported once)
//!
//! Each operation is one Lua script, atomic. The scripts touch only keys of one workspace.

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use uuid::Uuid;

use confab_core::ports::{PortResult, Presence};
use confab_core::presence::PresenceStatus;

use super::error::{connection, port};

// The user's status from their live devices (KEYS[2], KEYS[3]): connected devices decide;
// devices in their grace period only while none is connected.
const STATUS: &str = r#"
local function status()
  local connected, active, grace, grace_active = false, false, false, false
  for _, d in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local s = redis.call('HGET', KEYS[3], d) or 'a'
    if s == 'a' then connected = true active = true
    elseif s == 'w' then connected = true
    else grace = true if s == 'ga' then grace_active = true end end
  end
  if connected then return active and 'active' or 'away' end
  if grace then return grace_active and 'active' or 'away' end
  return 'offline'
end
"#;

// KEYS: online, conns, stat. ARGV: user, device, away (1/0), now, expiry, key ttl ms
const TOUCH: &str = r#"
local before = redis.call('HGET', KEYS[3], '_') or 'offline'
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])) do redis.call('HDEL', KEYS[3], d) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] == '1' and 'w' or 'a')
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
local after = status()
redis.call('HSET', KEYS[3], '_', after)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
if after ~= before then return after end
return false
"#;

// KEYS: online, conns, stat. ARGV: user, device, until, now
const LEAVE: &str = r#"
if not redis.call('ZSCORE', KEYS[2], ARGV[2]) then return false end
local before = redis.call('HGET', KEYS[3], '_') or 'offline'
for _, d in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])) do redis.call('HDEL', KEYS[3], d) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
local s = redis.call('HGET', KEYS[3], ARGV[2]) or 'a'
if s == 'a' or s == 'w' then redis.call('HSET', KEYS[3], ARGV[2], 'g' .. s) end
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[1], top[2], ARGV[1])
local after = status()
redis.call('HSET', KEYS[3], '_', after)
if after ~= before then return after end
return false
"#;

// KEYS: online. ARGV: now, key prefix (`<ns>:{ws}:p:`)
const SWEEP: &str = r#"
local out = {}
for _, u in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local ck, sk = ARGV[2] .. 'c:' .. u, ARGV[2] .. 's:' .. u
  redis.call('ZREMRANGEBYSCORE', ck, '-inf', ARGV[1])
  local top = redis.call('ZREVRANGE', ck, 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('ZREM', KEYS[1], u)
    if (redis.call('HGET', sk, '_') or 'offline') ~= 'offline' then table.insert(out, u) end
    redis.call('DEL', ck, sk)
  else
    redis.call('ZADD', KEYS[1], top[2], u)
  end
end
return out
"#;

#[derive(Clone)]
pub struct RedisPresence {
    conn: ConnectionManager,
    namespace: String,
    touch: redis::Script,
    leave: redis::Script,
    sweep: redis::Script,
}

impl RedisPresence {
    pub async fn connect(client: &redis::Client, namespace: &str) -> PortResult<Self> {
        let conn = connection(client).await?;
        Ok(Self {
            conn,
            namespace: namespace.to_string(),
            touch: redis::Script::new(&format!("{STATUS}{TOUCH}")),
            leave: redis::Script::new(&format!("{STATUS}{LEAVE}")),
            sweep: redis::Script::new(SWEEP),
        })
    }

    fn prefix(&self, ws: &Uuid) -> String {
        format!("{}:{{{ws}}}:p:", self.namespace)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn touch(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        away: bool,
        now_ms: i64,
        ttl_ms: i64,
    ) -> PortResult<Option<PresenceStatus>> {
        let p = self.prefix(&ws);
        let mut conn = self.conn.clone();
        let changed: Option<String> = self
            .touch
            .key(format!("{p}online"))
            .key(format!("{p}c:{user}"))
            .key(format!("{p}s:{user}"))
            .arg(user.to_string())
            .arg(device)
            .arg(if away { "1" } else { "0" })
            .arg(now_ms)
            .arg(now_ms + ttl_ms)
            .arg(ttl_ms * 4)
            .invoke_async(&mut conn)
            .await
            .map_err(port)?;
        Ok(changed.as_deref().and_then(PresenceStatus::parse))
    }

    async fn leave(
        &self,
        ws: Uuid,
        user: Uuid,
        device: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> PortResult<Option<PresenceStatus>> {
        let p = self.prefix(&ws);
        let mut conn = self.conn.clone();
        let changed: Option<String> = self
            .leave
            .key(format!("{p}online"))
            .key(format!("{p}c:{user}"))
            .key(format!("{p}s:{user}"))
            .arg(user.to_string())
            .arg(device)
            .arg(now_ms + grace_ms)
            .arg(now_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(port)?;
        Ok(changed.as_deref().and_then(PresenceStatus::parse))
    }

    async fn sweep(&self, ws: Uuid, now_ms: i64) -> PortResult<Vec<Uuid>> {
        let p = self.prefix(&ws);
        let mut conn = self.conn.clone();
        let gone: Vec<String> =
            self.sweep.key(format!("{p}online")).arg(now_ms).arg(&p).invoke_async(&mut conn).await.map_err(port)?;
        Ok(gone.iter().filter_map(|u| u.parse().ok()).collect())
    }

    async fn lookup(&self, ws: Uuid, users: &[Uuid], now_ms: i64) -> PortResult<Vec<PresenceStatus>> {
        if users.is_empty() {
            return Ok(vec![]);
        }
        let p = self.prefix(&ws);
        let mut pipe = redis::pipe();
        for u in users {
            pipe.cmd("ZSCORE").arg(format!("{p}online")).arg(u.to_string());
            pipe.cmd("HGET").arg(format!("{p}s:{u}")).arg("_");
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await.map_err(port)?;
        Ok(replies
            .chunks(2)
            .map(|pair| {
                let live =
                    pair[0].as_deref().and_then(|s| s.parse::<f64>().ok()).is_some_and(|exp| exp > now_ms as f64);
                match (live, pair[1].as_deref().and_then(PresenceStatus::parse)) {
                    (true, Some(PresenceStatus::Away)) => PresenceStatus::Away,
                    (true, _) => PresenceStatus::Active,
                    (false, _) => PresenceStatus::Offline,
                }
            })
            .collect())
    }

    async fn online_count(&self, ws: Uuid, now_ms: i64) -> PortResult<u64> {
        let mut conn = self.conn.clone();
        redis::cmd("ZCOUNT")
            .arg(format!("{}online", self.prefix(&ws)))
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(port)
    }
}
