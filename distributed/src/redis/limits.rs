//! Send limits on Redis, shared by every gateway: a token bucket per user
//! (`<ns>:{ws}:rl:u:<user>`) and one per workspace (`<ns>:{ws}:rl:ws`), both hashes of tokens and
//! the time they were counted, refilled and taken in one Lua script on Redis's clock (gateways'
//! clocks may differ). Both keys share the workspace's hash tag and are declared as `KEYS`.

use async_trait::async_trait;
use confab_core::ports::{Bucket, PortResult, SendLimits, SendVerdict};
use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::error::{connection, port};

// KEYS: user bucket, workspace bucket. ARGV: user rate, user burst, workspace rate, workspace
// burst (a rate of 0: no bucket). Returns 0 (taken from both), 1 (user empty), 2 (workspace empty).
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function tokens(key, rate, burst)
  if rate <= 0 then return nil end
  local v = redis.call('HMGET', key, 't', 'at')
  local left = tonumber(v[1]) or burst
  local at = tonumber(v[2]) or now
  return math.min(burst, left + math.max(0, now - at) / 1000 * rate)
end
local function keep(key, left, rate, burst)
  redis.call('HSET', key, 't', tostring(left), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local ur, ub, wr, wb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local u = tokens(KEYS[1], ur, ub)
local w = tokens(KEYS[2], wr, wb)
if u and u < 1 then return 1 end
if w and w < 1 then return 2 end
if u then keep(KEYS[1], u - 1, ur, ub) end
if w then keep(KEYS[2], w - 1, wr, wb) end
return 0
"#;

pub struct RedisSendLimits {
    conn: ConnectionManager,
    namespace: String,
    user: Bucket,
    workspace: Bucket,
    script: redis::Script,
}

impl RedisSendLimits {
    pub async fn connect(client: &redis::Client, namespace: &str, user: Bucket, workspace: Bucket) -> PortResult<Self> {
        Ok(Self {
            conn: connection(client).await?,
            namespace: namespace.to_string(),
            user,
            workspace,
            script: redis::Script::new(TAKE),
        })
    }
}

#[async_trait]
impl SendLimits for RedisSendLimits {
    async fn take(&self, ws: Uuid, user: Uuid, _now_ms: i64) -> PortResult<SendVerdict> {
        let prefix = format!("{}:{{{ws}}}:rl:", self.namespace);
        let mut conn = self.conn.clone();
        let verdict: i64 = self
            .script
            .key(format!("{prefix}u:{user}"))
            .key(format!("{prefix}ws"))
            .arg(self.user.rate)
            .arg(self.user.burst.max(1))
            .arg(self.workspace.rate)
            .arg(self.workspace.burst.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(port)?;
        Ok(match verdict {
            0 => SendVerdict::Allowed,
            1 => SendVerdict::UserLimited,
            _ => SendVerdict::WorkspaceLimited,
        })
    }
}
