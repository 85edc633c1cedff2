//! What the node's process-level tests share: a child process that is killed
//! and reaped on every path out of a test, panics included, and free ports.
#![allow(dead_code)] // each test binary uses part of it

use std::process::{Child, Command, ExitStatus};

/// A spawned process that is SIGKILLed and reaped when dropped, so a failing
/// assertion never leaves a node running (holding ports, or a pipe that a
/// script reading the test output waits on forever).
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn spawn(command: &mut Command) -> ChildGuard {
        ChildGuard(Some(command.spawn().expect("spawn child process")))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the child was not reaped yet")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Whether it has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("try_wait")
    }

    /// SIGKILL and reap now (the crash tests' "pull the plug").
    pub fn kill(mut self) -> ExitStatus {
        let mut child = self.0.take().expect("the child was not reaped yet");
        let _ = child.kill();
        child.wait().expect("reap child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `n` consecutive ports that are free on 127.0.0.1 now (one rule for the
/// tests and the benchmarks: [`lotline_node::demo::free_port_range`]).
pub fn free_ports(n: u16) -> u16 {
    lotline_node::demo::free_port_range(n)
}
