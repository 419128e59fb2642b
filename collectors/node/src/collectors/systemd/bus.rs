//! The D-Bus side of the systemd collector: one connection to the system bus (or straight to
//! systemd), kept across scrapes, and the calls one scrape makes on it.
//!
//! A scrape asks `org.freedesktop.systemd1` for the manager's `Version`, `Virtualization` and
//! `SystemState` and for `ListUnits`, all four at once, and then for the properties each
//! reported unit needs (`Properties.Get` on the unit's object path from `ListUnits`), up to
//! [`IN_FLIGHT`] at a time. node_exporter makes the same calls over a new connection per
//! scrape, one unit after the other in four goroutines.
//!
//! The collector runs on a plain worker thread, not inside the agent's tokio runtime. The
//! connection lives on a runtime of its own, a current-thread tokio runtime that the scrape's
//! thread drives while it waits (`block_on`): no extra thread, nothing running between scrapes
//! (the socket just buffers), and tokio is already in the build, which zbus's other executor
//! (async-io, its default) is not. The whole scrape is bounded by the collector's deadline, so
//! a bus that does not answer fails the scrape in time and is never left behind as stuck.
//!
//! Errors: an error reply (`org.freedesktop.DBus.Error.*`, `org.freedesktop.systemd1.*`) to a
//! unit property means that property is not there (an older systemd) and its series is left
//! out, as node_exporter does; to `ListUnits` or `SystemState` it fails the scrape. Anything
//! else (no socket, refused, closed, no answer in time) fails the scrape and drops the
//! connection. A connection kept from an earlier scrape that turns out broken (the bus was
//! restarted) is replaced at once, and the scrape goes on over the new one.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::task::JoinSet;
use zbus::{Connection, Variant};

use super::families::{Reported, Snapshot};
use super::manager::Version;
use super::units::{props_for, Extras, Prop, Type, Unit, UnitFilter, Value};

/// systemd's bus name.
const SYSTEMD: &str = "org.freedesktop.systemd1";
/// The manager's object path.
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
/// The manager's interface.
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// The standard properties interface.
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Property reads in flight at once. The system bus allows 128 pending replies per connection
/// (`max_replies_per_connection` in dbus-daemon's `system.conf`), so stay well under it.
/// Measured against the test fake (a zbus service behind a real dbus-daemon, debug build) with
/// 300 services and every optional family on, 1,500 reads a scrape: one at a time 153 ms,
/// 8 at once 86 ms, 32 at once 72 ms, 100 at once 69 ms.
pub(crate) const IN_FLIGHT: usize = 32;

/// A connection to systemd, made on first use and kept while it works.
pub(crate) struct Bus {
    address: String,
    /// A direct connection to systemd's private socket: no bus in between, no `Hello`.
    direct: bool,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    conn: Mutex<Option<Connection>>,
}

/// Why a scrape failed.
#[derive(Debug)]
enum Failed {
    /// The connection is unusable (or suspect): drop it.
    Bus(String),
    /// systemd answered, but not with what the scrape needs: keep the connection.
    Reply(String),
}

impl Bus {
    /// A bus client for `address` (a D-Bus address such as
    /// `unix:path=/run/dbus/system_bus_socket`). Nothing is connected yet.
    pub(crate) fn new(address: &str, direct: bool) -> Result<Bus, String> {
        check_address(address)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("starting the D-Bus client's runtime: {e}"))?;
        Ok(Bus {
            address: address.to_string(),
            direct,
            runtime: Some(runtime),
            conn: Mutex::new(None),
        })
    }

    /// Reads the manager and the units that `filter` keeps, before `deadline`.
    pub(crate) fn snapshot(
        &self,
        filter: &UnitFilter,
        extras: Extras,
        deadline: Instant,
    ) -> Result<Snapshot, String> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or("the D-Bus client is shutting down")?;
        // Two scrapes at once take turns: the second waits at most until the first's deadline.
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if Instant::now() >= deadline {
            // Spent waiting for the other scrape: leave the connection as it is.
            return Err("scrape deadline passed before systemd could be asked".to_string());
        }
        runtime.block_on(async {
            let read = self.read(&mut slot, filter, extras);
            let result = tokio::time::timeout_at(deadline.into(), read).await;
            result.unwrap_or_else(|_| {
                // Cut short with the connection taken out of the slot: the next scrape makes
                // a new one rather than trust one whose answers are still on the way.
                Err(format!(
                    "D-Bus at {}: systemd did not answer before the scrape deadline",
                    self.address
                ))
            })
        })
    }

    /// One scrape over the kept connection, or a new one; once more over a new one when the
    /// kept one turns out broken.
    async fn read(
        &self,
        slot: &mut Option<Connection>,
        filter: &UnitFilter,
        extras: Extras,
    ) -> Result<Snapshot, String> {
        loop {
            let (conn, kept) = match slot.take() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            match read_snapshot(&conn, filter, extras).await {
                Ok(snap) => {
                    *slot = Some(conn);
                    return Ok(snap);
                }
                Err(Failed::Reply(e)) => {
                    *slot = Some(conn);
                    return Err(e);
                }
                Err(Failed::Bus(e)) if kept => {
                    tracing::debug!(address = %self.address, error = %e,
                        "systemd: the kept D-Bus connection broke; connecting again");
                }
                Err(Failed::Bus(e)) => return Err(format!("D-Bus at {}: {e}", self.address)),
            }
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let builder = zbus::connection::Builder::address(self.address.as_str());
        let builder = if self.direct { builder.p2p() } else { builder };
        builder
            .build()
            .await
            .map_err(|e| format!("connecting to D-Bus at {}: {e}", self.address))
    }
}

impl Drop for Bus {
    /// The collector may be dropped inside the agent's runtime (a reload), where dropping a
    /// runtime that waits for its tasks would panic: let it go in the background.
    fn drop(&mut self) {
        let conn = self
            .conn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(conn);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether `address` is a D-Bus address zbus can connect to.
pub(crate) fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<zbus::Address>()
        .map(|_| ())
        .map_err(|e| format!("invalid D-Bus address {address:?}: {e}"))
}

/// Whether an error is systemd's (or the bus's) answer rather than a broken connection.
fn answered(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::MethodError(..) | zbus::Error::FDO(_))
}

/// One scrape's calls on `conn`.
async fn read_snapshot(
    conn: &Connection,
    filter: &UnitFilter,
    extras: Extras,
) -> Result<Snapshot, Failed> {
    let (version, virtualization, state, units) = tokio::join!(
        manager_property(conn, "Version"),
        manager_property(conn, "Virtualization"),
        manager_property(conn, "SystemState"),
        list_units(conn),
    );
    let version = Version::parse(optional(version)?.as_deref());
    let virtualization = optional(virtualization)?;
    let units = match units {
        Ok(units) => units,
        Err(e) if answered(&e) => return Err(Failed::Reply(format!("couldn't get units: {e}"))),
        Err(e) => return Err(Failed::Bus(e.to_string())),
    };
    // Before systemd 212 there is no SystemState, and node_exporter does not ask.
    let system_state = if version.has_system_state() {
        match state {
            Ok(s) => Some(s),
            Err(e) if answered(&e) => {
                return Err(Failed::Reply(format!("couldn't get system state: {e}")))
            }
            Err(e) => return Err(Failed::Bus(e.to_string())),
        }
    } else {
        None
    };
    let mut reported: Vec<Reported> = Vec::new();
    let mut reads = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        if !filter.keeps(unit) {
            continue;
        }
        for prop in props_for(unit, extras, version.has_system_state()) {
            reads.push((reported.len(), i, prop));
        }
        reported.push(Reported {
            unit: i,
            values: Vec::new(),
        });
    }
    for (slot, prop, value) in read_properties(conn, reads, &units).await? {
        if let Some(r) = reported.get_mut(slot) {
            r.values.push((prop, value));
        }
    }
    Ok(Snapshot {
        version,
        virtualization,
        system_state,
        units,
        reported,
    })
}

/// `Ok(None)` for an error reply (the property is not there), the error for anything else.
fn optional(r: Result<String, zbus::Error>) -> Result<Option<String>, Failed> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if answered(&e) => Ok(None),
        Err(e) => Err(Failed::Bus(e.to_string())),
    }
}

/// A string property of the manager.
async fn manager_property(conn: &Connection, name: &str) -> Result<String, zbus::Error> {
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            MANAGER_PATH,
            Some(PROPERTIES),
            "Get",
            &(MANAGER, name),
        )
        .await?;
    let body = reply.body();
    let value: Variant<'_> = body.deserialize()?;
    match value {
        Variant::Str(s) => Ok(s.to_string()),
        other => Err(zbus::Error::Failure(format!(
            "Manager.{name}: expected a string (s), got {}",
            other.value_signature()
        ))),
    }
}

/// One `ListUnits` row: name, description, load state, active state, sub state, followed,
/// object path, job id, job type, job path.
type UnitRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    zbus::ObjectPath<'a>,
    u32,
    &'a str,
    zbus::ObjectPath<'a>,
);

/// `Manager.ListUnits`.
async fn list_units(conn: &Connection) -> Result<Vec<Unit>, zbus::Error> {
    let reply = conn
        .call_method(Some(SYSTEMD), MANAGER_PATH, Some(MANAGER), "ListUnits", &())
        .await?;
    let body = reply.body();
    let rows: Vec<UnitRow<'_>> = body.deserialize()?;
    Ok(rows
        .into_iter()
        .map(|(name, _, load, active, _, _, path, _, _, _)| Unit {
            name: name.to_string(),
            load_state: load.to_string(),
            active_state: active.to_string(),
            path: path.to_string(),
        })
        .collect())
}

/// Reads `(slot, index into units, property)` with up to [`IN_FLIGHT`] calls at once; returns
/// the values that were answered, with their slots.
async fn read_properties(
    conn: &Connection,
    reads: Vec<(usize, usize, Prop)>,
    units: &[Unit],
) -> Result<Vec<(usize, Prop, Value)>, Failed> {
    let mut out = Vec::with_capacity(reads.len());
    let mut pending = reads.into_iter();
    let mut set = JoinSet::new();
    loop {
        while set.len() < IN_FLIGHT {
            let Some((slot, unit, prop)) = pending.next() else {
                break;
            };
            let Some(path) = units.get(unit).map(|u| u.path.clone()) else {
                continue;
            };
            let conn = conn.clone();
            set.spawn(async move { (slot, unit, prop, unit_property(&conn, &path, prop).await) });
        }
        let Some(done) = set.join_next().await else {
            return Ok(out);
        };
        let (slot, unit, prop, result) =
            done.map_err(|e| Failed::Bus(format!("a property read ended: {e}")))?;
        match result {
            Ok(value) => out.push((slot, prop, value)),
            Err(PropError::Missing) => {}
            Err(PropError::Bus(e)) => return Err(Failed::Bus(e.to_string())),
            Err(PropError::Type(got)) => {
                let unit = units.get(unit).map_or("?", |u| u.name.as_str());
                return Err(Failed::Reply(format!(
                    "unit {unit}: {}.{} is {got}, expected {}",
                    prop.interface(),
                    prop.name(),
                    prop.kind().signature()
                )));
            }
        }
    }
}

/// Why a unit property was not read.
#[derive(Debug)]
enum PropError {
    /// An error reply: not there on this systemd.
    Missing,
    /// Of another type than systemd documents (its signature).
    Type(String),
    /// The connection failed.
    Bus(zbus::Error),
}

/// `Properties.Get(prop)` on the unit at `path`.
async fn unit_property(conn: &Connection, path: &str, prop: Prop) -> Result<Value, PropError> {
    let reply = conn
        .call_method(
            Some(SYSTEMD),
            path,
            Some(PROPERTIES),
            "Get",
            &(prop.interface(), prop.name()),
        )
        .await
        .map_err(|e| {
            if answered(&e) {
                PropError::Missing
            } else {
                PropError::Bus(e)
            }
        })?;
    let body = reply.body();
    let value: Variant<'_> = body
        .deserialize()
        .map_err(|e| PropError::Type(format!("not a variant ({e})")))?;
    match (prop.kind(), value) {
        (Type::Str, Variant::Str(s)) => Ok(Value::Str(s.to_string())),
        (Type::U32, Variant::U32(n)) => Ok(Value::Num(u64::from(n))),
        (Type::U64, Variant::U64(n)) => Ok(Value::Num(n)),
        (_, other) => Err(PropError::Type(format!(
            "of type {}",
            other.value_signature()
        ))),
    }
}
