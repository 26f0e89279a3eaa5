//! What a forked child sends back to its parent: bytes over a pipe, and
//! its exit status. The child side uses only `write(2)` and `_exit(2)`,
//! so it needs no lock the fork may have copied held.

use std::io;
use std::time::{Duration, Instant};

/// A pipe from a child to its parent, created before the fork.
#[derive(Debug)]
pub struct Channel {
    read: i32,
    write: i32,
}

impl Channel {
    pub fn new() -> io::Result<Channel> {
        let mut fds = [0i32; 2];
        // SAFETY: pipe(2) with a valid two-element array.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Channel {
            read: fds[0],
            write: fds[1],
        })
    }

    /// In the child: writes all of `bytes` (an error ends the write; the
    /// parent then sees a short message).
    pub fn send(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            // SAFETY: write(2) on our pipe with a valid buffer.
            let n = unsafe { libc::write(self.write, bytes.as_ptr().cast(), bytes.len()) };
            if n <= 0 {
                return;
            }
            bytes = &bytes[n as usize..];
        }
    }

    /// In the parent: closes the write end and reads until the child's
    /// end closes (it exits), so a large message cannot block the child.
    pub fn receive(self) -> Vec<u8> {
        // SAFETY: closing our own write end once.
        unsafe { libc::close(self.write) };
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: read(2) into a valid buffer.
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        // SAFETY: closing our own read end once.
        unsafe { libc::close(self.read) };
        out
    }
}

/// Ends the child at once with `code`: no destructors, no atexit, no
/// stdio flush (`_exit(2)`).
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// Waits for child `pid`, killing it after `limit`. Returns its exit code,
/// or a one-line description of how it ended otherwise.
pub fn wait_child(pid: i32, limit: Duration) -> Result<i32, String> {
    let deadline = Instant::now() + limit;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r < 0 {
            return Err(format!("waitpid: {}", io::Error::last_os_error()));
        }
        if r == pid {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kill and waitpid on our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(format!("the child did not exit within {limit:?}"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Err(format!(
            "the child was killed by signal {}",
            libc::WTERMSIG(status)
        ))
    } else {
        Err(format!("the child ended with wait status {status:#x}"))
    }
}

/// Runs the ignored test `name` of the current test binary alone, in a
/// process of its own with the environment variable `env` set, and returns
/// its standard error once it succeeded and printed `passed` on standard
/// output. Tests that fork need this: the test harness runs other tests on
/// threads of the same process, and a child copies whatever locks they
/// hold. The test named here checks `env` to know it is the one meant to
/// run; the caller returns at once when `env` is already set.
pub fn run_alone(name: &str, env: &str, passed: &str) -> Result<String, String> {
    let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() && stdout.contains(passed) {
        Ok(stderr)
    } else {
        Err(format!(
            "{name} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        ))
    }
}
