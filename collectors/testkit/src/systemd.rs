//! A fake systemd on a private `dbus-daemon`, for the node module's systemd collector.
//!
//! No systemd runs on the machines these tests run on (a container, no PID 1 manager), so the
//! collector cannot be tested against the real one. What it talks to, though, is not systemd
//! itself but systemd's D-Bus API, and that can be had for real: a real `dbus-daemon`
//! (Debian's `dbus-daemon` package) with a system-bus-like config of its own (a socket in a temp dir,
//! EXTERNAL authentication, the system bus's limit of 128 pending replies per connection), on
//! which this fake owns `org.freedesktop.systemd1` and serves the interfaces and property
//! signatures that `org.freedesktop.systemd1(5)` documents:
//!
//! - `/org/freedesktop/systemd1`, `org.freedesktop.systemd1.Manager`: `ListUnits()` →
//!   `a(ssssssouso)`, properties `Version` (s), `Virtualization` (s), `SystemState` (s);
//! - one object per unit at `/org/freedesktop/systemd1/unit/<escaped name>` (systemd's own
//!   escaping: `_` and two hex digits for every byte but ASCII letters and digits), with
//!   `org.freedesktop.systemd1.Unit` (`Id` s, `LoadState` s, `ActiveState` s, `SubState` s,
//!   `ActiveEnterTimestamp` t) and by unit type `...Service` (`Type` s, `NRestarts` u,
//!   `TasksCurrent` t, `TasksMax` t), `...Socket` (`NAccepted` u, `NConnections` u,
//!   `NRefused` u), `...Timer` (`LastTriggerUSec` t) or `...Mount` (`Type` s).
//!
//! A property left `None` answers `org.freedesktop.DBus.Error.UnknownProperty`, as an older
//! systemd does for one it does not have yet (`NRestarts` before 235, `NRefused` before 239).
//! So a client sees the same bus, names, paths, interfaces and signatures as on a node; what
//! differs is only where the numbers come from: [`FakeSystemd::set_units`] and
//! [`FakeSystemd::update`] change them between scrapes (a service failing, its restart counter
//! going up). [`FakeSystemd::restart_daemon`] restarts the bus, as a node's `dbus.service`
//! restart does, and the fake reconnects to the new one. [`FakeSystemd::serve_private`]
//! also answers on a socket of its own the way systemd does on `/run/systemd/private`: direct
//! connections without a bus. The daemon is stopped on drop.
//!
//! Needs `/usr/bin/dbus-daemon` (`apt-get install -y dbus-daemon`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use zbus::fdo;
use zbus::message::Header;
use zbus::{interface, Connection, OwnedObjectPath};

use crate::TempDir;

/// The bus daemon the fake runs.
pub const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";

/// One unit as the fake serves it. Build with [`FakeUnit::new`] and the setters.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeUnit {
    /// The unit name, e.g. `ssh.service`; its suffix picks the type interface served.
    pub name: String,
    /// `loaded`, `not-found`, ...
    pub load_state: String,
    /// `active`, `failed`, ...
    pub active_state: String,
    /// `running`, `dead`, ...
    pub sub_state: String,
    /// `Service.Type` or `Mount.Type`.
    pub kind: String,
    /// `Service.NRestarts`.
    pub n_restarts: Option<u32>,
    /// `Service.TasksCurrent`.
    pub tasks_current: Option<u64>,
    /// `Service.TasksMax`.
    pub tasks_max: Option<u64>,
    /// `Socket.NAccepted`.
    pub n_accepted: Option<u32>,
    /// `Socket.NConnections`.
    pub n_connections: Option<u32>,
    /// `Socket.NRefused`.
    pub n_refused: Option<u32>,
    /// `Timer.LastTriggerUSec`.
    pub last_trigger_usec: Option<u64>,
    /// `Unit.ActiveEnterTimestamp`.
    pub active_enter_usec: Option<u64>,
}

impl FakeUnit {
    /// A loaded unit in `active_state`, with every property of its type present and zero
    /// (services `simple`, mounts `ext4`).
    pub fn new(name: &str, active_state: &str) -> FakeUnit {
        let kind = name.rsplit_once('.').map_or("", |(_, k)| k);
        let (service, socket) = (kind == "service", kind == "socket");
        let num32 = |on: bool| on.then_some(0u32);
        FakeUnit {
            name: name.to_string(),
            load_state: "loaded".to_string(),
            active_state: active_state.to_string(),
            sub_state: match active_state {
                "active" => "running",
                "failed" => "failed",
                _ => "dead",
            }
            .to_string(),
            kind: match kind {
                "service" => "simple",
                "mount" => "ext4",
                _ => "",
            }
            .to_string(),
            n_restarts: num32(service),
            tasks_current: service.then_some(0),
            tasks_max: service.then_some(u64::MAX),
            n_accepted: num32(socket),
            n_connections: num32(socket),
            n_refused: num32(socket),
            last_trigger_usec: (kind == "timer").then_some(0),
            active_enter_usec: Some(0),
        }
    }

    /// The same with another `LoadState` (`not-found`, `masked`).
    pub fn load_state(mut self, state: &str) -> FakeUnit {
        self.load_state = state.to_string();
        self
    }

    /// The same with another `Service.Type`/`Mount.Type`.
    pub fn kind(mut self, kind: &str) -> FakeUnit {
        self.kind = kind.to_string();
        self
    }

    /// The unit's object path, escaped as systemd escapes it.
    pub fn path(&self) -> String {
        unit_path(&self.name)
    }
}

/// `/org/freedesktop/systemd1/unit/<name>` with systemd's bus label escaping.
pub fn unit_path(name: &str) -> String {
    let mut out = String::from("/org/freedesktop/systemd1/unit/");
    if name.is_empty() {
        out.push('_');
    }
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (b.is_ascii_digit() && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// What the manager answers.
#[derive(Clone, Debug)]
struct ManagerState {
    version: String,
    virtualization: String,
    system_state: String,
}

/// Everything the fake serves, shared with the interface objects.
#[derive(Debug)]
struct State {
    manager: ManagerState,
    units: Vec<FakeUnit>,
    /// The clients that called `ListUnits`, in order of first call: `bus <n> <unique name>`,
    /// `n` counting daemon restarts (a new daemon hands out `:1.1` again).
    clients: Vec<String>,
    /// Daemons started so far.
    generation: u32,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A private `dbus-daemon` with a fake `org.freedesktop.systemd1` on it; see the module docs.
pub struct FakeSystemd {
    dir: TempDir,
    daemon: Child,
    runtime: tokio::runtime::Runtime,
    conn: Option<Connection>,
    state: Shared,
    /// Unit names with objects on the bus connection.
    served: BTreeSet<String>,
    /// Direct connections to [`FakeSystemd::serve_private`]'s socket.
    private: Private,
}

impl FakeSystemd {
    /// Starts the daemon and the fake with `units` and systemd `version` (e.g. `"252.22-1"`),
    /// `SystemState` `running` and `Virtualization` `kvm`. Panics, saying what failed, when
    /// either does not come up.
    pub fn start(version: &str, units: Vec<FakeUnit>) -> FakeSystemd {
        assert!(
            Path::new(DBUS_DAEMON).exists(),
            "{DBUS_DAEMON} is missing: `apt-get install -y dbus-daemon`"
        );
        let dir = TempDir::new("fake-systemd");
        let daemon = start_daemon(&dir);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("starting the fake systemd's runtime: {e}"));
        let state = Arc::new(Mutex::new(State {
            manager: ManagerState {
                version: version.to_string(),
                virtualization: "kvm".to_string(),
                system_state: "running".to_string(),
            },
            units,
            clients: Vec::new(),
            generation: 1,
        }));
        let mut fake = FakeSystemd {
            dir,
            daemon,
            runtime,
            conn: None,
            state,
            served: BTreeSet::new(),
            private: Arc::default(),
        };
        fake.connect();
        fake
    }

    /// The bus address for clients: `unix:path=<temp dir>/system_bus_socket`.
    pub fn address(&self) -> String {
        format!("unix:path={}", self.socket().display())
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.join("system_bus_socket")
    }

    /// Replaces the unit list (what `ListUnits` returns and which objects exist).
    pub fn set_units(&mut self, units: Vec<FakeUnit>) {
        lock(&self.state).units = units;
        self.sync_objects();
    }

    /// Changes one unit in place (e.g. `active_state = "failed"`, `n_restarts += 1`). Panics
    /// if there is no unit called `name`.
    pub fn update(&self, name: &str, change: impl FnOnce(&mut FakeUnit)) {
        let mut state = lock(&self.state);
        let unit = state
            .units
            .iter_mut()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("the fake systemd has no unit {name}"));
        change(unit);
    }

    /// Changes what the manager answers for `Version`, `SystemState` and `Virtualization`.
    pub fn set_manager(&self, version: &str, system_state: &str, virtualization: &str) {
        lock(&self.state).manager = ManagerState {
            version: version.to_string(),
            virtualization: virtualization.to_string(),
            system_state: system_state.to_string(),
        };
    }

    /// The clients that called `ListUnits`, each once, in the order they first did: one per
    /// connection a client made, as `bus <n> <unique name>` (`bus 1 :1.1`), `n` counting the
    /// daemons started.
    pub fn clients(&self) -> Vec<String> {
        lock(&self.state).clients.clone()
    }

    /// Stops the bus daemon (every client connection breaks) and starts a new one on the same
    /// socket, with the fake on it again, as a restart of a node's `dbus.service` does.
    pub fn restart_daemon(&mut self) {
        self.stop_daemon();
        self.daemon = start_daemon(&self.dir);
        lock(&self.state).generation += 1;
        self.connect();
    }

    fn stop_daemon(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.runtime.block_on(async move {
                let _ = conn.close().await;
            });
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_file(self.socket());
    }

    /// Connects the fake to the daemon, serves the manager and the units, and takes the name.
    fn connect(&mut self) {
        let address = self.address();
        let manager = Manager {
            state: self.state.clone(),
        };
        let conn = self
            .runtime
            .block_on(async {
                zbus::connection::Builder::address(address.as_str())
                    .serve_at("/org/freedesktop/systemd1", manager)
                    .build()
                    .await
            })
            .unwrap_or_else(|e| panic!("the fake systemd cannot connect to {address}: {e}"));
        self.conn = Some(conn);
        self.served.clear();
        self.sync_objects();
        let conn = self.conn.clone();
        self.runtime
            .block_on(async move {
                match conn {
                    Some(c) => c.request_name("org.freedesktop.systemd1").await,
                    None => Ok(()),
                }
            })
            .unwrap_or_else(|e| {
                panic!("the fake systemd cannot own org.freedesktop.systemd1: {e}")
            });
    }

    /// Adds objects for units that have none and removes those of units that are gone, on the
    /// bus connection and every private one.
    fn sync_objects(&mut self) {
        let state = self.state.clone();
        let conn = self.conn.clone();
        let served = &mut self.served;
        let mut private = std::mem::take(&mut *lock_private(&self.private));
        self.runtime
            .block_on(async {
                if let Some(conn) = conn {
                    serve_units(&conn, &state, served).await?;
                }
                for (conn, served) in &mut private {
                    serve_units(conn, &state, served).await?;
                }
                Ok::<_, zbus::Error>(())
            })
            .unwrap_or_else(|e| panic!("the fake systemd cannot serve its units: {e}"));
        lock_private(&self.private).extend(private);
    }

    /// Also answers on a private socket as systemd does on `/run/systemd/private`: direct
    /// (peer-to-peer) connections, no bus, no `Hello`, the same objects. Returns its address.
    pub fn serve_private(&mut self) -> String {
        let path = self.dir.join("private");
        let state = self.state.clone();
        let private = self.private.clone();
        let listener = self
            .runtime
            .block_on(async { tokio::net::UnixListener::bind(&path) })
            .unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        self.runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(stream) = stream.into_std() else {
                    continue;
                };
                let manager = Manager {
                    state: state.clone(),
                };
                let built = zbus::connection::Builder::unix_stream(stream)
                    .server(zbus::Guid::generate())
                    .p2p()
                    .serve_at("/org/freedesktop/systemd1", manager)
                    .build()
                    .await;
                let Ok(conn) = built else {
                    continue;
                };
                let mut served = BTreeSet::new();
                if serve_units(&conn, &state, &mut served).await.is_ok() {
                    lock_private(&private).push((conn, served));
                }
            }
        });
        format!("unix:path={}", path.display())
    }
}

/// Direct connections to the private socket, with the units each has objects for.
type Private = Arc<Mutex<Vec<(Connection, BTreeSet<String>)>>>;

fn lock_private(p: &Private) -> MutexGuard<'_, Vec<(Connection, BTreeSet<String>)>> {
    p.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Brings the unit objects on `conn` in line with the unit list: `served` names the units
/// that have objects there.
async fn serve_units(
    conn: &Connection,
    state: &Shared,
    served: &mut BTreeSet<String>,
) -> zbus::Result<()> {
    let wanted: BTreeSet<String> = lock(state).units.iter().map(|u| u.name.clone()).collect();
    let server = conn.object_server();
    for gone in served.difference(&wanted).cloned().collect::<Vec<_>>() {
        let path = unit_path(&gone);
        server.remove::<UnitIface, _>(path.as_str()).await?;
        let _ = server.remove::<ServiceIface, _>(path.as_str()).await;
        let _ = server.remove::<SocketIface, _>(path.as_str()).await;
        let _ = server.remove::<TimerIface, _>(path.as_str()).await;
        let _ = server.remove::<MountIface, _>(path.as_str()).await;
        served.remove(&gone);
    }
    for name in wanted.difference(&served.clone()) {
        let path = unit_path(name);
        let of = || Of {
            state: state.clone(),
            name: name.clone(),
        };
        server.at(path.as_str(), UnitIface(of())).await?;
        match name.rsplit_once('.').map_or("", |(_, k)| k) {
            "service" => {
                server.at(path.as_str(), ServiceIface(of())).await?;
            }
            "socket" => {
                server.at(path.as_str(), SocketIface(of())).await?;
            }
            "timer" => {
                server.at(path.as_str(), TimerIface(of())).await?;
            }
            "mount" => {
                server.at(path.as_str(), MountIface(of())).await?;
            }
            _ => {}
        }
        served.insert(name.clone());
    }
    Ok(())
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}

/// Writes the daemon's config into `dir` and starts it; returns once it listens.
fn start_daemon(dir: &TempDir) -> Child {
    let socket = dir.join("system_bus_socket");
    let config = dir.join("bus.conf");
    // The system bus's own policy is deny-by-default with per-service files; the test's
    // processes are all allowed here, and the limit on pending replies is the system bus's.
    let text = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_replies_per_connection">128</limit>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
    let log_path = dir.join("dbus-daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
    let mut child = Command::new(DBUS_DAEMON)
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--nopidfile", "--print-address"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {DBUS_DAEMON}: {e}"));
    // It prints its address once it listens.
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if !line.contains("unix:") {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!(
            "{DBUS_DAEMON} did not start (config {}); its log:\n{log}",
            config.display()
        );
    }
    child
}

/// `org.freedesktop.systemd1.Manager` at `/org/freedesktop/systemd1`.
struct Manager {
    state: Shared,
}

/// One `ListUnits` row: name, description, load state, active state, sub state, followed,
/// object path, job id, job type, job path.
type UnitRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

fn object_path(p: &str) -> fdo::Result<OwnedObjectPath> {
    OwnedObjectPath::try_from(p).map_err(|e| fdo::Error::Failed(format!("path {p:?}: {e}")))
}

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    /// `ListUnits() -> a(ssssssouso)`.
    fn list_units(&self, #[zbus(header)] header: Header<'_>) -> fdo::Result<Vec<UnitRow>> {
        let mut state = lock(&self.state);
        if let Some(sender) = header.sender() {
            let client = format!("bus {} {sender}", state.generation);
            if !state.clients.contains(&client) {
                state.clients.push(client);
            }
        }
        let root = object_path("/")?;
        state
            .units
            .iter()
            .map(|u| {
                Ok((
                    u.name.clone(),
                    format!("fake {}", u.name),
                    u.load_state.clone(),
                    u.active_state.clone(),
                    u.sub_state.clone(),
                    String::new(),
                    object_path(&u.path())?,
                    0,
                    String::new(),
                    root.clone(),
                ))
            })
            .collect()
    }

    #[zbus(property)]
    fn version(&self) -> String {
        lock(&self.state).manager.version.clone()
    }

    #[zbus(property)]
    fn virtualization(&self) -> String {
        lock(&self.state).manager.virtualization.clone()
    }

    #[zbus(property)]
    fn system_state(&self) -> String {
        lock(&self.state).manager.system_state.clone()
    }
}

/// The unit an interface object answers for, looked up in the shared state on every call.
struct Of {
    state: Shared,
    name: String,
}

impl Of {
    fn get<T>(&self, property: &str, read: impl FnOnce(&FakeUnit) -> Option<T>) -> fdo::Result<T> {
        let state = lock(&self.state);
        let unit = state
            .units
            .iter()
            .find(|u| u.name == self.name)
            .ok_or_else(|| fdo::Error::UnknownObject(format!("unit {} is gone", self.name)))?;
        read(unit).ok_or_else(|| fdo::Error::UnknownProperty(format!("no property {property}")))
    }
}

/// `org.freedesktop.systemd1.Unit`.
struct UnitIface(Of);

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl UnitIface {
    #[zbus(property)]
    fn id(&self) -> fdo::Result<String> {
        self.0.get("Id", |u| Some(u.name.clone()))
    }

    #[zbus(property)]
    fn load_state(&self) -> fdo::Result<String> {
        self.0.get("LoadState", |u| Some(u.load_state.clone()))
    }

    #[zbus(property)]
    fn active_state(&self) -> fdo::Result<String> {
        self.0.get("ActiveState", |u| Some(u.active_state.clone()))
    }

    #[zbus(property)]
    fn sub_state(&self) -> fdo::Result<String> {
        self.0.get("SubState", |u| Some(u.sub_state.clone()))
    }

    #[zbus(property)]
    fn active_enter_timestamp(&self) -> fdo::Result<u64> {
        self.0.get("ActiveEnterTimestamp", |u| u.active_enter_usec)
    }
}

/// `org.freedesktop.systemd1.Service`.
struct ServiceIface(Of);

#[interface(name = "org.freedesktop.systemd1.Service")]
impl ServiceIface {
    #[zbus(property, name = "Type")]
    fn kind(&self) -> fdo::Result<String> {
        self.0.get("Type", |u| Some(u.kind.clone()))
    }

    #[zbus(property, name = "NRestarts")]
    fn n_restarts(&self) -> fdo::Result<u32> {
        self.0.get("NRestarts", |u| u.n_restarts)
    }

    #[zbus(property)]
    fn tasks_current(&self) -> fdo::Result<u64> {
        self.0.get("TasksCurrent", |u| u.tasks_current)
    }

    #[zbus(property)]
    fn tasks_max(&self) -> fdo::Result<u64> {
        self.0.get("TasksMax", |u| u.tasks_max)
    }
}

/// `org.freedesktop.systemd1.Socket`.
struct SocketIface(Of);

#[interface(name = "org.freedesktop.systemd1.Socket")]
impl SocketIface {
    #[zbus(property, name = "NAccepted")]
    fn n_accepted(&self) -> fdo::Result<u32> {
        self.0.get("NAccepted", |u| u.n_accepted)
    }

    #[zbus(property, name = "NConnections")]
    fn n_connections(&self) -> fdo::Result<u32> {
        self.0.get("NConnections", |u| u.n_connections)
    }

    #[zbus(property, name = "NRefused")]
    fn n_refused(&self) -> fdo::Result<u32> {
        self.0.get("NRefused", |u| u.n_refused)
    }
}

/// `org.freedesktop.systemd1.Timer`.
struct TimerIface(Of);

#[interface(name = "org.freedesktop.systemd1.Timer")]
impl TimerIface {
    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> fdo::Result<u64> {
        self.0.get("LastTriggerUSec", |u| u.last_trigger_usec)
    }
}

/// `org.freedesktop.systemd1.Mount`.
struct MountIface(Of);

#[interface(name = "org.freedesktop.systemd1.Mount")]
impl MountIface {
    #[zbus(property, name = "Type")]
    fn kind(&self) -> fdo::Result<String> {
        self.0.get("Type", |u| Some(u.kind.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_paths_escape_as_systemd_does() {
        assert_eq!(
            unit_path("ssh.service"),
            "/org/freedesktop/systemd1/unit/ssh_2eservice"
        );
        assert_eq!(
            unit_path("systemd-journald.service"),
            "/org/freedesktop/systemd1/unit/systemd_2djournald_2eservice"
        );
        assert_eq!(
            unit_path("-.mount"),
            "/org/freedesktop/systemd1/unit/_2d_2emount"
        );
        assert_eq!(
            unit_path("1x@a\t.timer"),
            "/org/freedesktop/systemd1/unit/_31x_40a_09_2etimer"
        );
        assert_eq!(unit_path(""), "/org/freedesktop/systemd1/unit/_");
    }

    #[test]
    fn new_units_have_their_types_properties() {
        let s = FakeUnit::new("a.service", "active");
        assert_eq!(
            (s.kind.as_str(), s.n_restarts, s.n_accepted),
            ("simple", Some(0), None)
        );
        let k = FakeUnit::new("a.socket", "failed");
        assert_eq!(
            (k.sub_state.as_str(), k.n_refused, k.n_restarts),
            ("failed", Some(0), None)
        );
        let t = FakeUnit::new("a.timer", "inactive").load_state("masked");
        assert_eq!(
            (t.last_trigger_usec, t.load_state.as_str()),
            (Some(0), "masked")
        );
    }
}
