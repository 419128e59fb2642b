//! Which files to tail: the kubelet's layout `<log_dir>/<namespace>_<pod>_<uid>/<container>/`
//! holds `<restart>.log` (being written) and `<restart>.log.<YYYYMMDD-hhmmss>` (rotated away,
//! to be read to its end). Compressed rotations (`.gz`) and temporary files are not read.

use std::path::{Path, PathBuf};

/// A container's log directory, as its path names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerDir {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
}

/// Parses a pod directory's name, `<namespace>_<pod>_<uid>`. Namespaces and pod names cannot
/// hold `_` (DNS labels and subdomains), so the split is unambiguous.
pub fn parse_pod_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut parts = name.splitn(3, '_');
    let (ns, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((ns, pod, uid))
}

/// A log file's place in its container's sequence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileName {
    /// The container's restart count (`0.log`, `1.log`, ...).
    pub restart: u64,
    /// The file being written (`<n>.log`): read after the rotated ones.
    pub live: bool,
    /// The rotation suffix (a time), by which rotated files are read in order.
    pub rotated: Option<String>,
}

/// Parses `<n>.log` or `<n>.log.<suffix>`; compressed and temporary files are `None`.
pub fn parse_file_name(name: &str) -> Option<FileName> {
    let (n, rest) = name.split_once(".log")?;
    let restart = n.parse().ok()?;
    let rotated = match rest {
        "" => None,
        r => {
            let suffix = r.strip_prefix('.')?;
            if suffix.is_empty()
                || suffix.ends_with(".gz")
                || suffix.ends_with(".tmp")
                || !suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return None;
            }
            Some(suffix.to_string())
        }
    };
    Some(FileName {
        restart,
        live: rotated.is_none(),
        rotated,
    })
}

/// One file found by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub dir: ContainerDir,
    pub name: FileName,
    pub path: PathBuf,
}

/// Every log file under `root`, each container's files in reading order. Directories that
/// vanish during the scan are skipped; a root that cannot be read is an error.
pub fn scan(root: &Path) -> std::io::Result<Vec<Found>> {
    let mut found = Vec::new();
    for pod in std::fs::read_dir(root)? {
        let Ok(pod) = pod else { continue };
        let pod_name = pod.file_name();
        let Some((ns, name, uid)) = pod_name.to_str().and_then(parse_pod_dir) else {
            continue;
        };
        let Ok(containers) = std::fs::read_dir(pod.path()) else {
            continue;
        };
        for c in containers.flatten() {
            let Some(container) = c.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let dir = ContainerDir {
                namespace: ns.to_string(),
                pod: name.to_string(),
                uid: uid.to_string(),
                container,
            };
            let Ok(files) = std::fs::read_dir(c.path()) else {
                continue;
            };
            for f in files.flatten() {
                let Some(file) = f.file_name().to_str().and_then(parse_file_name) else {
                    continue;
                };
                if f.file_type().map(|t| t.is_dir()).unwrap_or(true) {
                    continue;
                }
                found.push(Found {
                    dir: dir.clone(),
                    name: file,
                    path: f.path(),
                });
            }
        }
    }
    found.sort_by(|a, b| (&a.dir, &a.name).cmp(&(&b.dir, &b.name)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_testkit::TempDir;

    #[test]
    fn names() {
        assert_eq!(
            parse_pod_dir("kube-system_coredns-5d78c9869d-abcde_0b5e-11"),
            Some(("kube-system", "coredns-5d78c9869d-abcde", "0b5e-11"))
        );
        assert_eq!(parse_pod_dir("no-underscores"), None);
        assert_eq!(parse_pod_dir("a__u"), None);
        let live = parse_file_name("0.log").unwrap();
        let rotated = parse_file_name("0.log.20261130-052000").unwrap();
        assert_eq!(live.rotated, None);
        assert!(rotated < live, "rotated files are read first");
        assert!(parse_file_name("1.log").unwrap() > live);
        assert!(parse_file_name("0.log.20261130-052000.gz").is_none());
        assert!(parse_file_name("0.log.20261130-052000.tmp").is_none());
        assert!(parse_file_name("x.log").is_none());
        assert!(parse_file_name("0.logs").is_none());
    }

    #[test]
    fn scan_finds_files_in_reading_order() {
        let t = TempDir::new("eos-logs-scan");
        let c = t.path().join("ns_pod_uid1/app");
        std::fs::create_dir_all(&c).unwrap();
        for f in [
            "0.log",
            "0.log.20261130-052000",
            "0.log.20261130-051000",
            "0.log.1.gz",
            "1.log",
        ] {
            std::fs::write(c.join(f), "").unwrap();
        }
        std::fs::create_dir_all(t.path().join("not-a-pod/app")).unwrap();
        std::fs::write(t.path().join("not-a-pod/app/0.log"), "").unwrap();
        let found = scan(t.path()).unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|f| f.path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "0.log.20261130-051000",
                "0.log.20261130-052000",
                "0.log",
                "1.log"
            ]
        );
        assert_eq!(found[0].dir.namespace, "ns");
        assert_eq!(found[0].dir.container, "app");
        assert!(scan(&t.path().join("missing")).is_err());
    }
}
