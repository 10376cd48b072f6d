//! The process's own metrics, in the names Prometheus clients use everywhere
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from `/proc` at each
//! scrape, and `confab_build_info`. Linux only: elsewhere the process metrics are absent.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// What `/proc/self` says at one moment.
struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    threads: i64,
    start_time_seconds: f64,
    open_fds: i64,
    max_fds: i64,
}

/// Reads `/proc/self/stat`, `/proc/self/fd` and `/proc/self/limits`; `None` off Linux.
fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the command name (field 2) may hold spaces: fields are counted after its closing ')'
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // SAFETY: sysconf only reads a system constant
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let (ticks, page) = (ticks.max(1) as f64, page.max(1) as f64);
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok()))?;
    let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<i64>().ok()
    });
    Some(Sample {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        threads: field(20)? as i64,
        start_time_seconds: boot_time + field(22)? / ticks,
        open_fds: std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(0),
        max_fds: max_fds.unwrap_or(0),
    })
}

/// The process metrics, refreshed from `/proc` whenever they are gathered.
pub struct ProcessMetrics {
    cpu: Counter,
    resident: Gauge,
    virtual_memory: Gauge,
    threads: IntGauge,
    start_time: Gauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
}

impl ProcessMetrics {
    pub fn new() -> Self {
        let gauge = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help)).expect("a valid gauge");
        let int_gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help)).expect("a valid gauge");
        Self {
            cpu: Counter::with_opts(Opts::new("process_cpu_seconds_total", "user and system CPU time spent, seconds"))
                .expect("a valid counter"),
            resident: gauge("process_resident_memory_bytes", "resident memory size, bytes"),
            virtual_memory: gauge("process_virtual_memory_bytes", "virtual memory size, bytes"),
            threads: int_gauge("process_threads", "OS threads of the process"),
            start_time: gauge("process_start_time_seconds", "start time of the process, seconds since the Unix epoch"),
            open_fds: int_gauge("process_open_fds", "open file descriptors"),
            max_fds: int_gauge("process_max_fds", "the limit of open file descriptors"),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu,
            &self.resident,
            &self.virtual_memory,
            &self.threads,
            &self.start_time,
            &self.open_fds,
            &self.max_fds,
        ]
    }
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.collectors().into_iter().flat_map(|c| c.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(s) = sample() else { return Vec::new() };
        self.cpu.reset();
        self.cpu.inc_by(s.cpu_seconds);
        self.resident.set(s.resident_bytes);
        self.virtual_memory.set(s.virtual_bytes);
        self.threads.set(s.threads);
        self.start_time.set(s.start_time_seconds);
        self.open_fds.set(s.open_fds);
        self.max_fds.set(s.max_fds);
        self.collectors().into_iter().flat_map(|c| c.collect()).collect()
    }
}

/// `confab_build_info{version}`: always 1, so dashboards can tell which version runs where.
pub fn build_info() -> IntGauge {
    let opts = Opts::new("confab_build_info", "the running build: always 1, its version in the label")
        .const_label("version", env!("CARGO_PKG_VERSION"));
    let gauge = IntGauge::with_opts(opts).expect("a valid gauge");
    gauge.set(1);
    gauge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_reads_as_itself() {
        let families = ProcessMetrics::new().collect();
        let value = |name: &str| {
            let family = families.iter().find(|f| f.name() == name).unwrap_or_else(|| panic!("{name}"));
            let m = &family.get_metric()[0];
            if family.name().ends_with("_total") {
                m.get_counter().get_value()
            } else {
                m.get_gauge().get_value()
            }
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0, "a test binary holds over a megabyte");
        assert!(value("process_open_fds") >= 3.0, "stdin, stdout, stderr at least");
        assert!(value("process_threads") >= 1.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 24.0 * 3600.0, "started {started}, now {now}");
    }
}
