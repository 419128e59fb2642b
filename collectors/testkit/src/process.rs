//! A server process under test: started with its output in a log file, waited for until it
//! answers over HTTP, and killed on drop (also when the test fails).

use crate::http::{request, Response};
use crate::wait::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child process that serves HTTP on `addr`, killed on drop.
#[derive(Debug)]
pub struct Server {
    name: String,
    child: Child,
    /// Where it serves (`host:port`); empty until known, see [`Server::set_addr`].
    pub addr: String,
    log: PathBuf,
}

impl Server {
    /// Starts `cmd` with stdin closed and stdout and stderr written to `log`. `name` is what
    /// error messages call it; `addr` may be empty while the port is not known yet.
    pub fn spawn(name: &str, mut cmd: Command, addr: &str, log: &Path) -> Result<Server, String> {
        let out =
            std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Server {
            name: name.to_string(),
            child,
            addr: addr.to_string(),
            log: log.to_path_buf(),
        })
    }

    /// Sets the address once learnt (e.g. from the log of a server that bound port 0).
    pub fn set_addr(&mut self, addr: String) {
        self.addr = addr;
    }

    /// Waits until `GET path` answers 200 while the process keeps running. Fails, naming the
    /// process and quoting the end of its log, when it exits first or `timeout` passes.
    pub fn wait_ready(&mut self, path: &str, timeout: Duration) -> Result<(), String> {
        let mut exited = None;
        let ready = wait_until(timeout, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                return true;
            }
            matches!(self.get(path), Ok(r) if r.status == 200)
        });
        match exited {
            Some(status) => Err(format!(
                "{} exited during startup ({status}); log:\n{}",
                self.name,
                self.log_tail()
            )),
            None if ready => Ok(()),
            None => Err(format!(
                "{} not ready on {}{path} after {timeout:?}; log:\n{}",
                self.name,
                self.addr,
                self.log_tail()
            )),
        }
    }

    /// `GET path` on a new connection.
    pub fn get(&self, path: &str) -> std::io::Result<Response> {
        request("GET", &self.addr, path, &[], b"")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit; its exit code, if it exited with one.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status();
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last 40 lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn a_process_that_exits_is_reported_with_its_log() {
        let dir = TempDir::new("testkit-process");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo starting; echo broken >&2; exit 3"]);
        let mut s = Server::spawn("fake", cmd, "127.0.0.1:1", &dir.join("fake.log")).unwrap();
        let e = s.wait_ready("/", Duration::from_secs(10)).unwrap_err();
        assert!(e.starts_with("fake exited during startup"), "{e}");
        assert!(e.contains("starting\nbroken"), "{e}");
        assert_eq!(s.wait_exit(Duration::from_secs(1)), Some(3));
    }

    #[test]
    fn killed_on_drop() {
        let dir = TempDir::new("testkit-process");
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let mut s = Server::spawn("sleeper", cmd, "127.0.0.1:1", &dir.join("s.log")).unwrap();
        assert!(s.alive());
        let e = s.wait_ready("/", Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("sleeper not ready on 127.0.0.1:1/"), "{e}");
        let pid = s.pid();
        drop(s);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
