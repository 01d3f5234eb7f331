//! Whether this machine can hold a plan's connections: checked before a run starts, so
//! the client's own limits (file descriptors, local ports) are never taken for the
//! target's failures halfway through.
//!
//! The check is an upper bound: every planned connection may be open at once (a
//! connection's lifetime is up to its script and the server). Reconnects reuse their
//! connection's descriptor and add none.

use crate::model::CONNECTION_BYTES_ESTIMATE;

/// File descriptors kept for everything besides the connections: stdio, result files,
/// the runtime, the embedded server's listener, the probe phase's connections (32).
pub const SPARE_FDS: u64 = 64;

/// Where the ephemeral port range is on Linux.
const PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Where the kernel's ceiling on one process's open files is on Linux.
const NR_OPEN: &str = "/proc/sys/fs/nr_open";

/// Where Linux says how much memory the machine has (`MemTotal:`, KiB).
const MEMINFO: &str = "/proc/meminfo";

/// Which cgroups this process is in, one `ID:CONTROLLERS:PATH` line per hierarchy
/// (cgroups(7)).
const SELF_CGROUP: &str = "/proc/self/cgroup";

/// Where the cgroup v2 hierarchy is mounted (a cgroup's limit is `memory.max` in its folder,
/// `max` when there is none).
const CGROUP_V2: &str = "/sys/fs/cgroup";

/// Where cgroup v1's memory hierarchy is mounted (a cgroup's limit is
/// `memory.limit_in_bytes` in its folder, a figure near 2^63 when there is none).
const CGROUP_V1_MEMORY: &str = "/sys/fs/cgroup/memory";

/// The memory this process may use: the machine's (`MemTotal`) or, inside a container or
/// a service's slice, the lowest limit of its cgroup and of every cgroup above it
/// ([`cgroup_limit`]) when that is lower; `None` where neither can be read (another
/// platform). Bytes.
pub fn memory_limit() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let total = read(MEMINFO).and_then(|text| parse_mem_total(&text));
    let cgroup = read(SELF_CGROUP).and_then(|lines| cgroup_limit(&lines, &read));
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// The lowest memory limit of the cgroups `self_cgroup` (the text of `/proc/self/cgroup`)
/// names, and of every cgroup above each, read through `read` (a file's text by its path);
/// `None` when none has one. cgroup v2 (`0::PATH`: `memory.max`) and v1 (the `memory`
/// controller's line: `memory.limit_in_bytes`) alike: a limit set on a parent (a
/// Kubernetes pod's, a systemd slice's) binds its children though their own files say
/// `max`. A folder this process cannot see is skipped: in a container with a cgroup
/// namespace, or whose hierarchy is mounted at its own cgroup, the path reads `/` or is
/// not there, and the mount's top file is the container's own limit.
fn cgroup_limit(self_cgroup: &str, read: &dyn Fn(&str) -> Option<String>) -> Option<u64> {
    let mut lowest: Option<u64> = None;
    for line in self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (mount, file) = if id == "0" && controllers.is_empty() {
            (CGROUP_V2, "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            (CGROUP_V1_MEMORY, "memory.limit_in_bytes")
        } else {
            continue;
        };
        // The cgroup's own folder, then each one above it, up to the mount's top.
        let mut folder = path.trim_end_matches('/');
        loop {
            let limit = read(&format!("{mount}{folder}/{file}"))
                .and_then(|text| text.trim().parse::<u64>().ok());
            if let Some(limit) = limit {
                lowest = Some(lowest.map_or(limit, |l| l.min(limit)));
            }
            match folder.rfind('/') {
                Some(parent) => folder = &folder[..parent],
                None => break,
            }
        }
    }
    lowest
}

/// `/proc/meminfo`'s `MemTotal:       24567890 kB` → bytes.
fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` as people read memory: `512 MiB`, `3.2 GiB`.
pub fn shown_bytes(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB {
        format!("{:.1} GiB", bytes as f64 / GIB as f64)
    } else {
        format!("{} MiB", bytes.div_ceil(MIB))
    }
}

/// What a plan needs from the client machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Planned connections (all may be open at once).
    pub connections: u64,
    /// Whether the built-in server runs in this process: each connection's server side
    /// takes a descriptor too.
    pub embedded_server: bool,
    /// Connections that park bytes at a collide barrier or a message rendezvous: while
    /// parked, each holds a duplicate of its descriptor (the release writes through it).
    pub synchronized: u64,
}

impl Need {
    /// The memory the plan's connections take while open, at least
    /// ([`CONNECTION_BYTES_ESTIMATE`] each, twice when the built-in server runs in this
    /// process and holds their other ends), bytes.
    pub fn memory(&self) -> u64 {
        let per_connection = CONNECTION_BYTES_ESTIMATE * if self.embedded_server { 2 } else { 1 };
        self.connections.saturating_mul(per_connection)
    }

    /// File descriptors the plan may hold at once.
    pub fn fds(&self) -> u64 {
        let per_connection = if self.embedded_server { 2 } else { 1 };
        (self.connections * per_connection)
            .saturating_add(self.synchronized)
            .saturating_add(SPARE_FDS)
    }
}

/// The most connections a plan may hold at once on this machine: what the open-file hard
/// limit leaves after [`SPARE_FDS`] (halved when the built-in server runs in this
/// process, one more descriptor each when they may park at a collide barrier or a
/// rendezvous: `synchronized`), and the ephemeral ports of one target address. `None`
/// when neither can be read. Pressure escalation stops there rather than have [`check`]
/// refuse its plan.
pub fn max_connections(embedded_server: bool, synchronized: bool) -> Option<u64> {
    let per_connection = u64::from(embedded_server) + 1 + u64::from(synchronized);
    let fds = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(_, hard)| hard.saturating_sub(SPARE_FDS) / per_connection);
    let ports = std::fs::read_to_string(PORT_RANGE)
        .ok()
        .and_then(|text| parse_port_range(&text))
        .map(|(low, high)| u64::from(high.saturating_sub(low)) + 1);
    match (fds, ports) {
        (Some(f), Some(p)) => Some(f.min(p)),
        (f, p) => f.or(p),
    }
}

/// [`Machine::quick_per_address`] for this machine's port range; `None` where it cannot be
/// read.
pub fn quick_per_address() -> Option<u64> {
    port_range_here().quick_per_address()
}

/// This machine's ephemeral port range alone, from one source address (no descriptor
/// limit read or raised).
fn port_range_here() -> Machine {
    Machine {
        fd_limit: None,
        ports: std::fs::read_to_string(PORT_RANGE)
            .ok()
            .and_then(|text| parse_port_range(&text)),
        fd_ceiling: None,
        source_addrs: 1,
        memory: None,
    }
}

/// [`Machine::slow_ports_warning`] for `connections` from `addresses` source addresses (the
/// system's choice when 0) on this machine's port range.
pub fn slow_ports_warning(connections: u64, addresses: usize) -> Option<String> {
    let machine = port_range_here().from_addresses(addresses);
    machine.slow_ports_warning(&Need {
        connections,
        embedded_server: false,
        synchronized: 0,
    })
}

/// What the client machine allows; `None` where it cannot be known (the check is skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// The open-file limit after raising the soft limit towards the hard one.
    pub fd_limit: Option<u64>,
    /// The ephemeral port range, inclusive (Linux).
    pub ports: Option<(u32, u32)>,
    /// The most descriptors the kernel lets any one process open (Linux `fs.nr_open`):
    /// no `ulimit` goes past it.
    pub fd_ceiling: Option<u64>,
    /// The local addresses connections come from (`--source-addr`; 1 when the system
    /// picks): each has the whole port range to one target address.
    pub source_addrs: u64,
    /// The memory this process may use ([`memory_limit`]), bytes.
    pub memory: Option<u64>,
}

impl Machine {
    /// Raises the open-file soft limit as far as `need` wants (up to the hard limit) and
    /// reads what the machine allows.
    pub fn raise_and_read(need: &Need) -> Machine {
        let fd_limit = match rlimit::increase_nofile_limit(need.fds()) {
            Ok(limit) => Some(limit),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read or raise the open-file limit");
                None
            }
        };
        let ports = std::fs::read_to_string(PORT_RANGE)
            .ok()
            .and_then(|text| parse_port_range(&text));
        let fd_ceiling = std::fs::read_to_string(NR_OPEN)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        Machine {
            fd_limit,
            ports,
            fd_ceiling,
            source_addrs: 1,
            memory: memory_limit(),
        }
    }

    /// The same machine, connecting from `count` local addresses (at least one).
    pub fn from_addresses(self, count: usize) -> Machine {
        Machine {
            source_addrs: u64::try_from(count).unwrap_or(u64::MAX).max(1),
            ..self
        }
    }

    /// The connections one source address carries to one target address before each
    /// new one gets slow: Linux gives such a connection the first free port of the even
    /// half of the ephemeral range, and once that half is taken searches all of it for
    /// every new connection before trying the odd half (on this project's 2-core machine a
    /// client went from a tenth to all of a core at 14,350 connections open from one
    /// address, ~1 ms of CPU per new connection). Four fifths of that half, which leaves
    /// room for ports still held after a close (`TIME_WAIT`); `None` where the range cannot
    /// be read.
    pub fn quick_per_address(&self) -> Option<u64> {
        let (low, high) = self.ports?;
        let ports = u64::from(high.saturating_sub(low)) + 1;
        let half = ports / 2;
        Some((half * 4 / 5).max(1))
    }

    /// A warning when `need` puts more connections on each source address than
    /// [`Self::quick_per_address`]: the run works, but the connections past it start late.
    pub fn slow_ports_warning(&self, need: &Need) -> Option<String> {
        let quick = self.quick_per_address()?;
        let per_address = need.connections.div_ceil(self.source_addrs);
        (per_address > quick).then(|| {
            format!(
                "{} connections from {} source address{}: past ~{quick} on one address, \
                 Linux searches the used ports for each new connection to a server (~1 ms of \
                 CPU each), and the connections after them start late; give --source-addr \
                 more addresses of this host (against a loopback target any of 127/8: \
                 127.0.0.2,127.0.1.2,…), or split the load with --workers N",
                need.connections,
                self.source_addrs,
                if self.source_addrs == 1 { "" } else { "es" }
            )
        })
    }
}

/// Grows this process's descriptor table now, before the load, to hold `fds`
/// descriptors (at most `limit`, the open-file limit), and returns the size it asked for.
///
/// Linux grows the table by doubling when a new descriptor passes its size, and in a
/// process with several threads each growth waits out an RCU grace period
/// (`synchronize_rcu` in `expand_fdtable`, fs/file.c): 10–12 ms measured on this project's
/// 2-core machine when a run's descriptors passed 256 and 512. The thread that opened the
/// descriptor runs nothing else meanwhile, so connections due then start late (generator
/// lag) and a ramp's schedule shows holes. The table never shrinks: one duplicate at the
/// highest number the run may use, closed at once, grows it for the whole run.
///
/// Best effort: where the duplicate cannot be made (a limit lower than asked, another
/// platform) the run goes on as before.
pub fn reserve_fd_table(fds: u64, limit: Option<u64>) -> Option<u64> {
    let highest = fds.min(limit.unwrap_or(fds)).saturating_sub(1);
    let min = i32::try_from(highest).ok()?;
    let duplicate = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), min).ok()?;
    drop(duplicate);
    Some(highest + 1)
}

/// `", N duplicates held at a collide barrier or rendezvous"`, or nothing for none.
fn duplicates_held(synchronized: u64) -> String {
    if synchronized == 0 {
        String::new()
    } else {
        format!(", {synchronized} duplicates held at a collide barrier or rendezvous")
    }
}

/// A plan this machine cannot run as it is, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error(
        "this plan may hold {needed} file descriptors open at once ({connections} connections{server}{held}, \
         plus {SPARE_FDS} spare), but this process may open {limit}: raise the limit \
         (`ulimit -n {needed}` in the shell, LimitNOFILE={needed} for a systemd service, \
         --ulimit nofile={needed} for docker), split the load over processes, each with a \
         limit of its own (`--workers N`), or plan fewer connections",
        held = duplicates_held(*.synchronized)
    )]
    Fds {
        needed: u64,
        limit: u64,
        connections: u64,
        /// `" × 2 (the built-in server runs in this process)"` or empty.
        server: &'static str,
        synchronized: u64,
    },
    #[error(
        "this plan may hold {needed} file descriptors open at once ({connections} connections{server}, \
         plus duplicates and spares), more than this kernel lets one process open \
         (fs.nr_open = {ceiling}), whatever the ulimit: split the load over processes \
         (`--workers N`, each with a source address of its own) or machines (`--shard i/n`), \
         or plan fewer connections"
    )]
    FdsBeyondKernel {
        needed: u64,
        ceiling: u64,
        connections: u64,
        /// As [`CapacityError::Fds`]'s.
        server: &'static str,
    },
    #[error(
        "this plan may hold {connections} connections open at once, but the ephemeral port \
         range {low}-{high} has {ports} ports for one target address from each source \
         address (source addresses: {addresses}): widen it (`sysctl -w \
         net.ipv4.ip_local_port_range=\"1024 65535\"`), plan fewer connections, or split the \
         load over more source addresses (`--source-addr A,B,…` of this host; `--workers N` \
         against a loopback target; several client machines)"
    )]
    Ports {
        connections: u64,
        ports: u64,
        low: u32,
        high: u32,
        addresses: u64,
    },
    #[error(
        "this plan may hold {connections} connections open at once{server}, about {} while \
         open (at least {} KiB each), but this process may use {} (the machine's memory, or \
         its cgroup's limit): split the load over machines (`--shard i/n`, each machine \
         one share) or plan fewer connections",
        shown_bytes(*needed),
        CONNECTION_BYTES_ESTIMATE / 1024,
        shown_bytes(*limit)
    )]
    Memory {
        needed: u64,
        limit: u64,
        connections: u64,
        /// As [`CapacityError::Fds`]'s.
        server: &'static str,
    },
}

/// Refuses a plan that needs more than `machine` allows.
pub fn check(need: &Need, machine: &Machine) -> Result<(), CapacityError> {
    let needed = need.fds();
    let server = if need.embedded_server {
        " × 2 (the built-in server runs in this process)"
    } else {
        ""
    };
    // Memory first: no setting of this machine makes room for it, while the descriptor
    // limit may be raised (a plan past both named the descriptors, then, raised, the
    // memory).
    if let Some(limit) = machine.memory.filter(|limit| need.memory() > *limit) {
        return Err(CapacityError::Memory {
            needed: need.memory(),
            limit,
            connections: need.connections,
            server,
        });
    }
    if let Some(limit) = machine.fd_limit {
        if limit < needed {
            if let Some(ceiling) = machine.fd_ceiling.filter(|c| *c < needed) {
                return Err(CapacityError::FdsBeyondKernel {
                    needed,
                    ceiling,
                    connections: need.connections,
                    server,
                });
            }
            return Err(CapacityError::Fds {
                needed,
                limit,
                connections: need.connections,
                synchronized: need.synchronized,
                server,
            });
        }
    }
    if let Some((low, high)) = machine.ports {
        let ports = u64::from(high.saturating_sub(low)) + 1;
        if need.connections > ports.saturating_mul(machine.source_addrs.max(1)) {
            return Err(CapacityError::Ports {
                connections: need.connections,
                ports,
                low,
                high,
                addresses: machine.source_addrs.max(1),
            });
        }
    }
    Ok(())
}

/// `"32768\t60999\n"` → `(32768, 60999)`.
fn parse_port_range(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    let low = parts.next()?.ok()?;
    let high = parts.next()?.ok()?;
    (low <= high).then_some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Machine = Machine {
        fd_limit: Some(1 << 20),
        ports: Some((32768, 60999)),
        fd_ceiling: Some(1 << 20),
        source_addrs: 1,
        memory: Some(1 << 40),
    };

    #[test]
    fn a_plan_within_the_limits_passes() {
        let need = Need {
            connections: 10_000,
            embedded_server: true,
            synchronized: 10_000,
        };
        assert_eq!(check(&need, &ROOMY), Ok(()));
        let unknown = Machine {
            fd_limit: None,
            ports: None,
            fd_ceiling: None,
            source_addrs: 1,
            memory: None,
        };
        let huge = Need {
            connections: 1 << 30,
            embedded_server: false,
            synchronized: 0,
        };
        assert_eq!(check(&huge, &unknown), Ok(()), "unknown limits: no refusal");
    }

    #[test]
    fn too_few_file_descriptors_is_refused_with_what_to_change() {
        let machine = Machine {
            fd_limit: Some(1024),
            ..ROOMY
        };
        let external = Need {
            connections: 960,
            embedded_server: false,
            synchronized: 0,
        };
        assert_eq!(check(&external, &machine), Ok(()), "960 + 64 = 1024 fits");
        // Parked at a collide barrier, each connection holds a duplicate descriptor.
        let colliding = Need {
            synchronized: 480,
            ..external
        };
        let err = check(&colliding, &machine).unwrap_err();
        assert!(
            matches!(err, CapacityError::Fds { needed: 1504, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("480 duplicates"), "{err}");
        let embedded = Need {
            embedded_server: true,
            ..external
        };
        let err = check(&embedded, &machine).unwrap_err();
        assert!(matches!(
            err,
            CapacityError::Fds {
                needed: 1984,
                limit: 1024,
                ..
            }
        ));
        let text = err.to_string();
        assert!(text.contains("ulimit -n 1984"), "{text}");
        assert!(text.contains("built-in server"), "{text}");
        assert!(text.contains("--workers N"), "{text}");
        assert!(!text.contains("duplicates"), "none held: {text}");
    }

    /// Past the kernel's ceiling on one process's descriptors, no `ulimit` helps: the
    /// refusal says to split the load instead of naming a limit no one can set.
    #[test]
    fn more_descriptors_than_the_kernel_allows_says_to_split_the_load() {
        let machine = Machine {
            fd_limit: Some(20_000),
            ..ROOMY
        };
        let need = Need {
            connections: 4_000_000,
            embedded_server: true,
            synchronized: 0,
        };
        let err = check(&need, &machine).unwrap_err();
        assert!(
            matches!(
                err,
                CapacityError::FdsBeyondKernel {
                    ceiling: 1_048_576,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("--workers N") && !text.contains("ulimit -n 8"),
            "{text}"
        );
        let within = Need {
            connections: 500_000,
            ..need
        };
        let err = check(&within, &machine).unwrap_err();
        assert!(err.to_string().contains("ulimit -n 1000064"), "{err}");
    }

    #[test]
    fn more_connections_than_local_ports_is_refused() {
        let need = Need {
            connections: 30_000,
            embedded_server: false,
            synchronized: 0,
        };
        let err = check(&need, &ROOMY).unwrap_err();
        assert!(matches!(err, CapacityError::Ports { ports: 28232, .. }));
        let text = err.to_string();
        assert!(text.contains("ip_local_port_range"), "{text}");
        assert!(text.contains("--source-addr A,B"), "{text}");
        // Each source address has the whole range.
        assert_eq!(check(&need, &ROOMY.from_addresses(2)), Ok(()));
    }

    /// The warning for this machine's range (what `--workers` says when its workers share
    /// addresses): past the quick share of each address, and only then.
    #[test]
    fn the_warning_here_counts_connections_per_address() {
        let Some(quick) = quick_per_address() else {
            assert_eq!(slow_ports_warning(1 << 30, 1), None, "no range, no warning");
            return;
        };
        assert_eq!(slow_ports_warning(quick, 1), None);
        assert_eq!(
            slow_ports_warning(quick, 0),
            None,
            "0: the system's one address"
        );
        assert!(slow_ports_warning(quick + 1, 1).is_some());
        assert!(slow_ports_warning(quick + 1, 0).is_some());
        assert_eq!(slow_ports_warning(quick + 1, 2), None);
        assert!(slow_ports_warning(2 * quick + 1, 2).is_some());
    }

    /// Past four fifths of half the range on one address, the run works but warns; more
    /// addresses take the warning away.
    #[test]
    fn more_connections_than_one_address_carries_quickly_are_warned_of() {
        let need = |connections| Need {
            connections,
            embedded_server: false,
            synchronized: 0,
        };
        assert_eq!(ROOMY.quick_per_address(), Some(11_292));
        assert_eq!(ROOMY.slow_ports_warning(&need(11_292)), None);
        let warning = ROOMY.slow_ports_warning(&need(11_293)).unwrap_or_default();
        assert!(
            warning.starts_with("11293 connections from 1 source address: past ~11292")
                && warning.contains("--source-addr")
                && !warning.contains("  "),
            "{warning}"
        );
        assert_eq!(
            ROOMY.from_addresses(2).slow_ports_warning(&need(20_000)),
            None
        );
        let unknown = Machine {
            ports: None,
            ..ROOMY
        };
        assert_eq!(unknown.slow_ports_warning(&need(1 << 30)), None);
    }

    /// A limit set above this process's own cgroup binds it: the lowest of its cgroup and
    /// of those above it counts, v2 and v1 alike, and a folder that cannot be read (a
    /// container's view of the host's paths) is skipped for the mount's top.
    #[test]
    fn the_lowest_cgroup_limit_above_this_process_binds_it() {
        use std::collections::HashMap;
        let files = |entries: &[(&str, &str)]| -> HashMap<String, String> {
            entries
                .iter()
                .map(|(path, text)| (path.to_string(), text.to_string()))
                .collect()
        };
        let limit = |cgroup: &str, files: &HashMap<String, String>| {
            cgroup_limit(cgroup, &|path: &str| files.get(path).cloned())
        };
        // cgroup v2, a pod's limit on the parent, the container's own file unlimited.
        let v2 = files(&[
            ("/sys/fs/cgroup/memory.max", "max\n"),
            ("/sys/fs/cgroup/kubepods/memory.max", "max\n"),
            ("/sys/fs/cgroup/kubepods/pod1/memory.max", "1073741824\n"),
            ("/sys/fs/cgroup/kubepods/pod1/c1/memory.max", "max\n"),
        ]);
        assert_eq!(limit("0::/kubepods/pod1/c1\n", &v2), Some(1 << 30));
        // A cgroup namespace: the path reads `/`, the top file is the container's.
        let namespaced = files(&[("/sys/fs/cgroup/memory.max", "536870912\n")]);
        assert_eq!(limit("0::/\n", &namespaced), Some(1 << 29));
        // cgroup v1, as this workplace's machines have it: the memory controller's line;
        // the other controllers' lines name no memory limit.
        let v1 = files(&[
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "/sys/fs/cgroup/memory/process_api/memory.limit_in_bytes",
                "2147483648\n",
            ),
            (
                "/sys/fs/cgroup/memory/process_api/3cb1/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        let lines = "9:name=systemd:/\n4:memory:/process_api/3cb1\n1:cpu:/\n0::/\n";
        assert_eq!(limit(lines, &v1), Some(1 << 31));
        // A path the container cannot see (its hierarchy mounted at its own cgroup).
        let mounted_at_own =
            files(&[("/sys/fs/cgroup/memory/memory.limit_in_bytes", "268435456\n")]);
        assert_eq!(
            limit("4:memory:/docker/abc\n", &mounted_at_own),
            Some(1 << 28)
        );
        // No limit anywhere, or nothing readable: none.
        let unlimited = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(limit("0::/user.slice\n", &unlimited), None);
        assert_eq!(limit("", &v2), None);
        assert_eq!(limit("garbage without colons\n", &v2), None);
    }

    /// A plan whose connections alone need more memory than this process may use is
    /// refused before any connection, with the figure and the limit; the built-in server's
    /// ends count too, and a machine whose memory is unknown refuses nothing.
    #[test]
    fn a_plan_beyond_the_machine_s_memory_is_refused_with_both_figures() {
        // Ports enough from several source addresses: memory is what runs out.
        let small = Machine {
            memory: Some(1 << 30),
            source_addrs: 8,
            ..ROOMY
        };
        let need = |connections, embedded_server| Need {
            connections,
            embedded_server,
            synchronized: 0,
        };
        // 65,536 × 16 KiB is exactly 1 GiB: it fits; one more does not.
        assert_eq!(check(&need(65_536, false), &small), Ok(()));
        let err = check(&need(65_537, false), &small).unwrap_err();
        assert!(
            matches!(err, CapacityError::Memory { needed, limit: 1_073_741_824, .. } if needed == 65_537 * 16 * 1024),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("65537 connections open at once, about 1.0 GiB while open")
                && text.contains("this process may use 1.0 GiB")
                && text.contains("--shard i/n"),
            "{text}"
        );
        // With the built-in server, each connection's other end is here too.
        assert!(check(&need(40_000, true), &small).is_err());
        let unknown = Machine {
            memory: None,
            ..small
        };
        assert_eq!(check(&need(200_000, false), &unknown), Ok(()));
        // Past the descriptors too: the memory, which no setting here makes room for, is
        // what the refusal names.
        let few_fds = Machine {
            fd_limit: Some(1024),
            ..small
        };
        assert!(
            matches!(
                check(&need(65_537, false), &few_fds),
                Err(CapacityError::Memory { .. })
            ),
            "{:?}",
            check(&need(65_537, false), &few_fds)
        );
        assert!(matches!(
            check(&need(2_000, false), &few_fds),
            Err(CapacityError::Fds { .. })
        ));
    }

    #[test]
    fn meminfo_and_byte_figures_read_as_people_write_them() {
        let meminfo = "MemTotal:       24567890 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(24_567_890 * 1024));
        assert_eq!(parse_mem_total("MemFree: 1 kB"), None);
        assert_eq!(shown_bytes(3 << 29), "1.5 GiB");
        assert_eq!(shown_bytes(5 << 20), "5 MiB");
        assert_eq!(shown_bytes(1), "1 MiB");
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
    }

    /// The table size `/proc/self/status` reports (`FDSize`), on Linux.
    fn fd_table_size() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn the_descriptor_table_is_grown_before_the_load() {
        let Some(before) = fd_table_size() else {
            return; // Not Linux: nothing to read it back from.
        };
        let limit = rlimit::increase_nofile_limit(20_000).ok();
        // Past what this test process has used so far, within its limit.
        let want = (before * 4).max(4096).min(limit.unwrap_or(4096));
        assert!(
            want > before,
            "room to grow: table {before}, limit {limit:?}"
        );
        let reserved = reserve_fd_table(want, limit);
        assert_eq!(reserved, Some(want), "limit {limit:?}");
        let after = fd_table_size().unwrap_or(0);
        assert!(
            after >= want,
            "FDSize {after} after reserving {want} (was {before})"
        );
    }
}
