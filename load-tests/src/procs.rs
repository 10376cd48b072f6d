//! Reading processes from /proc: CPU time, resident memory, and finding the real servers'
//! processes by the TCP port they listen on (the service scripts pick free ports).

use anyhow::Context;
use std::collections::HashSet;

/// Resident memory (VmRSS) in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")
}

/// User plus system CPU seconds the process has used.
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// The process listening on TCP `port` (IPv4 or IPv6), if one of ours can be read.
pub fn listening_on(port: u16) -> Option<u32> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN, inode is the tenth field
            let local_port = f.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && f.get(3) == Some(&"0A") {
                if let Some(inode) = f.get(9) {
                    inodes.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_dir.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.contains(target.to_string_lossy().as_ref()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// The port of an address like `host:port`, `http://host:port/` or `redis://host:port/`.
pub fn port_of(addr: &str) -> Option<u16> {
    let rest = addr.split("://").last()?;
    let hostport = rest.split('/').next()?.split(',').next()?;
    hostport.rsplit(':').next()?.parse().ok()
}

/// CPU and memory of a set of named processes, sampled at the start and end of a window.
pub struct Watch {
    procs: Vec<(String, u32)>,
    start: Vec<f64>,
    at: std::time::Instant,
}

/// One process over one window: share of one core (percent) and RSS at the end (MiB).
pub struct Usage {
    pub name: String,
    pub cpu_pct: f64,
    pub rss_mib: f64,
}

impl Watch {
    pub fn start(procs: &[(String, u32)]) -> Watch {
        let start = procs.iter().map(|(_, pid)| cpu_secs(*pid).unwrap_or(f64::NAN)).collect();
        Watch { procs: procs.to_vec(), start, at: std::time::Instant::now() }
    }

    pub fn finish(&self) -> Vec<Usage> {
        let secs = self.at.elapsed().as_secs_f64();
        self.procs
            .iter()
            .zip(&self.start)
            .map(|((name, pid), s0)| Usage {
                name: name.clone(),
                cpu_pct: (cpu_secs(*pid).unwrap_or(f64::NAN) - s0) / secs * 100.0,
                rss_mib: rss_kib(*pid).map(|k| k as f64 / 1024.0).unwrap_or(f64::NAN),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_of_service_addresses() {
        assert_eq!(port_of("127.0.0.1:9092"), Some(9092));
        assert_eq!(port_of("redis://127.0.0.1:6379/"), Some(6379));
        assert_eq!(port_of("http://127.0.0.1:9200"), Some(9200));
        assert_eq!(port_of("127.0.0.1:9092,127.0.0.1:9093"), Some(9092));
    }

    #[test]
    fn finds_its_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(listening_on(port), Some(std::process::id()));
    }
}
