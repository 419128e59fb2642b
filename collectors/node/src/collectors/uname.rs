//! `uname`: `node_uname_info`, the `uname(2)` fields as labels (dashboards use `nodename`
//! for their host dropdowns). This is a system call, not a file: it describes the kernel and
//! UTS namespace the agent runs in (the host's, in a `hostNetwork` DaemonSet).

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "uname",
    default_enabled: true,
    build: |_, _| Ok(Box::new(UnameCollector)),
};

struct UnameCollector;

/// The `uname(2)` fields, as node_exporter labels them.
struct Uname {
    sysname: String,
    nodename: String,
    release: String,
    version: String,
    machine: String,
    domainname: String,
}

impl Collector for UnameCollector {
    fn update(&self, enc: &mut Encoder<'_>, _ctx: &mut Ctx<'_>) -> Result<(), String> {
        let u = uname()?;
        enc.single(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            Kind::Gauge,
            &[
                ("domainname", &u.domainname),
                ("machine", &u.machine),
                ("nodename", &u.nodename),
                ("release", &u.release),
                ("sysname", &u.sysname),
                ("version", &u.version),
            ],
            1.0,
        );
        Ok(())
    }
}

fn uname() -> Result<Uname, String> {
    // SAFETY: utsname is plain old data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", std::io::Error::last_os_error()));
    }
    Ok(Uname {
        sysname: c_field(&u.sysname),
        nodename: c_field(&u.nodename),
        release: c_field(&u.release),
        version: c_field(&u.version),
        machine: c_field(&u.machine),
        domainname: c_field(&u.domainname),
    })
}

/// A NUL-terminated `c_char` array as text (lossy, stops at the first NUL or the end).
fn c_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_fields() {
        let f: Vec<libc::c_char> = b"Linux\0junk".iter().map(|&b| b as libc::c_char).collect();
        assert_eq!(c_field(&f), "Linux");
        let f: Vec<libc::c_char> = b"abc".iter().map(|&b| b as libc::c_char).collect();
        assert_eq!(c_field(&f), "abc");
    }

    #[test]
    fn this_machine() {
        let u = uname().unwrap();
        assert_eq!(u.sysname, "Linux");
        assert!(!u.release.is_empty());
    }
}
