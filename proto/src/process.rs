//! What every Oryx binary does about its own process.
//!
//! Guards: a reader that leaves early (`oryx-signer watermark export | head`) is not an error.
//! `println!` panics when stdout is a closed pipe; [`quiet_on_broken_stdout`] turns exactly that
//! panic into a quiet successful exit, as Unix tools end on SIGPIPE, and leaves every other panic
//! to the default report.
//!
//! Also: a log line is one line. [`LogStderr`] is the writer both daemons log through; it
//! escapes every control character of a log event but its final newline, so a request field
//! carrying `\n` (or an escape sequence) cannot forge a second log line or rewrite a terminal.

/// Installs the panic hook described in the module docs. Call first thing in `main`.
pub fn quiet_on_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Stderr for log events: see the module docs (one event per write, as tracing's formatter
/// writes them).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogStderr;

impl std::io::Write for LogStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(&escape_event(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `event` with its control characters (but a final newline and tabs) written as `\n`,
/// `\r`, `\x1b`, … .
pub fn escape_event(event: &[u8]) -> Vec<u8> {
    let (body, end) = match event.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (event, &b""[..]),
    };
    let mut out = Vec::with_capacity(event.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_line_stays_inside_its_event() {
        let event = b"WARN refused: principal node1\n2026-12-07 INFO signed block 9\x1b[2J\n";
        let out = String::from_utf8(escape_event(event)).expect("utf-8");
        assert_eq!(out.matches('\n').count(), 1);
        assert!(out.ends_with('\n'));
        assert!(
            out.contains("node1\\n2026") && out.contains("\\x1b[2J"),
            "{out}"
        );
        assert_eq!(escape_event(b"plain\tline\n"), b"plain\tline\n");
    }
}
