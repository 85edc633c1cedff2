//! Network namespaces: each node in its own namespace, behind a veth pair
//! plugged into a bridge in the root namespace, where the harness runs.
//!
//! ```text
//!   root namespace: harness ── lotchaos<I> (bridge, 10.77.<I>.1/24)
//!                                 │ lc<I>n0h   │ lc<I>n1h  ...
//!   namespace lotchaos<I>-n0:  lc<I>n0p 10.77.<I>.11   node 0 (API :8080, p2p :7100)
//!   namespace lotchaos<I>-n1:  lc<I>n1p 10.77.<I>.12   node 1
//! ```
//!
//! A partition is a set of nftables drop rules on the *input* hook inside
//! node namespaces, matching only node addresses: a dropped packet is lost
//! silently, as on a real network (an output-hook drop would hand the
//! sender an error instead), and the harness at 10.77.<I>.1 still reaches
//! every node. Dropping `from`'s packets at `to` makes the link one-way.
//!
//! Every name carries the instance number `I`, and an instance is taken
//! under an exclusive `flock` ([`Instance`]), so the leftovers of a crashed
//! run of the same instance can be removed safely at start, and two runs on
//! one machine use two instances.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Instances tried before giving up (each is a /24 and a bridge).
const INSTANCES_MAX: u8 = 8;
const TABLE: &str = "lotchaos";

/// An exclusive claim on one instance number, held until the process
/// exits (the kernel drops the lock even after SIGKILL).
#[derive(Debug)]
pub struct Instance {
    pub index: u8,
    _lock: File,
}

fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("lotline-chaos")
}

/// Where the pids of an instance's node processes are recorded, so a run
/// can reap the nodes a crashed run left behind.
pub fn pid_file(instance: u8) -> PathBuf {
    lock_dir().join(format!("instance-{instance}.pids"))
}

impl Instance {
    /// Claims the first free instance.
    pub fn claim() -> Result<Instance> {
        let dir = lock_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for index in 0..INSTANCES_MAX {
            let path = dir.join(format!("instance-{index}.lock"));
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Instance { index, _lock: file }),
                Err(rustix::io::Errno::WOULDBLOCK) => continue,
                Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
            }
        }
        bail!(
            "all {INSTANCES_MAX} lotline-chaos instances are in use (locks in {})",
            dir.display()
        )
    }
}

/// The namespaces, veths and bridge of one instance. Dropping it removes
/// them all, and kills any process still inside a namespace.
#[derive(Debug)]
pub struct Network {
    instance: u8,
    nodes: usize,
}

impl Network {
    pub fn bridge(instance: u8) -> String {
        format!("lotchaos{instance}")
    }

    pub fn namespace_name(instance: u8, node: usize) -> String {
        format!("lotchaos{instance}-n{node}")
    }

    fn veth_host(&self, node: usize) -> String {
        format!("lc{}n{node}h", self.instance)
    }

    fn veth_node(&self, node: usize) -> String {
        format!("lc{}n{node}p", self.instance)
    }

    pub fn gateway(instance: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, instance, 1)
    }

    pub fn node_ip(instance: u8, node: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, instance, 11 + node as u8)
    }

    pub fn namespace(&self, node: usize) -> String {
        Network::namespace_name(self.instance, node)
    }

    /// Builds the bridge, one namespace per node and the nftables table
    /// partitions use. Removes this instance's leftovers first.
    pub fn create(instance: &Instance, nodes: usize) -> Result<Network> {
        let index = instance.index;
        remove_leftovers(index, nodes);
        let subnet = format!("10.77.{index}.0/24");
        let used = output("ip", &["-o", "-4", "addr", "show", "to", &subnet])?;
        if !used.trim().is_empty() {
            bail!(
                "{subnet} is already used on this machine ({}); the harness needs it for instance {index}",
                used.trim()
            );
        }
        // From here on, dropping `network` undoes whatever was made.
        let network = Network {
            instance: index,
            nodes,
        };
        let bridge = Network::bridge(index);
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", Network::gateway(index)),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for node in 0..nodes {
            let ns = network.namespace(node);
            let (host, inner) = (network.veth_host(node), network.veth_node(node));
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &bridge, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            let addr = format!("{}/24", Network::node_ip(index, node));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            nft(
                &ns,
                &[
                    "add table inet lotchaos",
                    "add chain inet lotchaos input { type filter hook input priority 0 ; policy accept ; }",
                ],
            )?;
        }
        Ok(network)
    }

    /// Drops every packet from node `from` arriving at node `to`.
    pub fn cut(&self, from: usize, to: usize) -> Result<()> {
        let rule = format!(
            "add rule inet {TABLE} input ip saddr {} drop",
            Network::node_ip(self.instance, from)
        );
        nft(&self.namespace(to), &[&rule])
    }

    /// Removes every drop rule: all links deliver again.
    pub fn heal(&self) -> Result<()> {
        for node in 0..self.nodes {
            nft(
                &self.namespace(node),
                &[&format!("flush chain inet {TABLE} input")],
            )?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        remove_leftovers(self.instance, self.nodes);
    }
}

/// Removes an instance's namespaces (killing what runs inside), veths and
/// bridge. Errors are ignored: most of these usually do not exist.
pub fn remove_leftovers(instance: u8, nodes: usize) {
    for node in 0..nodes {
        let ns = Network::namespace_name(instance, node);
        if let Ok(pids) = output("ip", &["netns", "pids", &ns]) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        let _ = quiet("ip", &["netns", "del", &ns]);
        let _ = quiet("ip", &["link", "del", &format!("lc{instance}n{node}h")]);
    }
    let _ = quiet("ip", &["link", "del", &Network::bridge(instance)]);
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2 must be installed)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs nft commands inside a namespace, as one transaction (`nft -f -`).
fn nft(namespace: &str, commands: &[&str]) -> Result<()> {
    use std::io::Write;
    let script = commands.join("\n") + "\n";
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running `ip netns exec ... nft`")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing the nft script")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft in {namespace} ({}): {}",
            script.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quiet(program: &str, args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
}

/// Checks the tools and privileges network faults need, with one message
/// that says what is missing.
pub fn preflight() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "lotline-chaos needs root: it creates network namespaces, veth pairs and nftables rules \
             (run it as root, e.g. `sudo`, as CI does; `--loopback` runs without namespaces and without partition faults)"
        );
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !found {
            bail!(
                "`{tool}` is not installed (Debian package {package}); the partition faults need it"
            );
        }
    }
    Ok(())
}
