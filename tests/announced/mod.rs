//! Test servers (moto_server, chromedriver) started on port 0, so the OS picks a port
//! nobody else holds, and read back from the line in which the server announces it.
//!
//! Picking a free port first and passing it on races with parallel tests: two of them
//! can be handed the same port, the second server fails to bind and exits, and its test
//! goes on talking to the first test's server until that one is killed (a CI failure
//! seen as "Connection refused" in the middle of a test).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Which of the child's output streams carries the announcement.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Spawns `cmd` with `stream` piped and waits up to `timeout` for a line containing
/// `marker` directly followed by the port number. The stream is drained for the
/// child's whole life afterwards, so a chatty server never blocks on a full pipe.
/// Panics (these are tests) with the child's output when it exits or stays silent.
pub fn spawn_announced(
    mut cmd: Command,
    stream: Stream,
    marker: &str,
    timeout: Duration,
) -> (Child, u16) {
    match stream {
        Stream::Stdout => cmd.stdout(Stdio::piped()).stderr(Stdio::null()),
        Stream::Stderr => cmd.stdout(Stdio::null()).stderr(Stdio::piped()),
    };
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let out: Box<dyn Read + Send> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().expect("piped stdout")),
        Stream::Stderr => Box::new(child.stderr.take().expect("piped stderr")),
    };
    let (tx, rx) = mpsc::channel::<Result<u16, String>>();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut lines = BufReader::new(out).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(port) = port_after(&line, &marker) {
                let _ = tx.send(Ok(port));
                // Keep draining until the child closes the stream.
                for _ in lines.by_ref() {}
                return;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(port)) => (child, port),
        Ok(Err(seen)) => {
            // The stream closed; kill in case the child lives on without it, so the wait
            // cannot hang (an exited child keeps its own exit status).
            let _ = child.kill();
            let status = child.wait();
            panic!("{cmd:?} ended ({status:?}) without announcing its port; it printed:\n{seen}")
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not announce its port within {timeout:?}")
        }
    }
}

/// The port in `line` right after `marker`, if there is one.
fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

#[test]
fn the_port_is_read_after_the_marker_only() {
    let m = "Running on http://127.0.0.1:";
    assert_eq!(
        port_after(" * Running on http://127.0.0.1:46721", m),
        Some(46721)
    );
    assert_eq!(port_after(" * Running on http://127.0.0.1:0", m), None);
    assert_eq!(port_after("Press CTRL+C to quit", m), None);
    let c = "started successfully on port ";
    assert_eq!(
        port_after("ChromeDriver was started successfully on port 45903.", c),
        Some(45903)
    );
    assert_eq!(port_after("Starting ChromeDriver 156.0 on port 0", c), None);
}
