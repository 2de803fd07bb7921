//! An invocation's record: what `wisp logs` shows of a recent invocation, and what metering persists — when,
//! which revision, the outcome, phase timings, what it used, its captured output.

/// One invocation, as `wisp logs` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InvocationRecord {
    /// Invocation id.
    pub id: String,
    /// What started it: `http`, `api` or `event`.
    #[serde(default)]
    pub trigger: std::borrow::Cow<'static, str>,
    /// Start time, unix milliseconds.
    pub at_ms: u64,
    /// Revision that served it.
    pub revision: String,
    /// HTTP status the client got.
    pub status: u16,
    /// Failure detail, if any.
    pub error: Option<String>,
    /// Whether a new instance was created for it (cold) rather than a warm one reused.
    #[serde(default)]
    pub cold: bool,
    /// Waiting for admission (an instance slot), microseconds.
    #[serde(default)]
    pub queue_us: u64,
    /// Creating the instance, microseconds (zero when warm).
    pub instantiate_us: u64,
    /// The guest's initialisation export, microseconds (zero unless a WAGI module exports one and was not
    /// snapshotted at deploy).
    #[serde(default)]
    pub init_us: u64,
    /// Handler until the response head, microseconds.
    #[serde(default)]
    pub handler_us: u64,
    /// Response head until the guest finished, microseconds.
    #[serde(default)]
    pub response_us: u64,
    /// Total time from arrival, microseconds (queue included).
    pub duration_us: u64,
    /// Guest stdout + stderr (lossy UTF-8).
    pub logs: String,
    /// Whether guest output was cut at the function's `max_log_bytes`.
    pub logs_truncated: bool,
    /// Most linear memory the instance held at once, bytes.
    #[serde(default)]
    pub peak_memory_bytes: u64,
    /// Outbound HTTP body bytes, both ways.
    #[serde(default)]
    pub egress_bytes: u64,
    /// Wall time the guest ran (instantiate to done), microseconds.
    #[serde(default)]
    pub wall_us: u64,
    /// Thread CPU time of the guest and of host work done for it, microseconds.
    #[serde(default)]
    pub cpu_us: u64,
    /// The function's memory limit, bytes.
    #[serde(default)]
    pub memory_limit_bytes: u64,
    /// Request body bytes the guest read.
    #[serde(default)]
    pub bytes_in: u64,
    /// Response body bytes the guest produced.
    #[serde(default)]
    pub bytes_out: u64,
    /// Operations and payload bytes of each platform service it used.
    #[serde(default, skip_serializing_if = "crate::usage::ServiceUsage::is_zero")]
    pub services: crate::usage::ServiceUsage,
}

/// `text` made safe for a terminal: control characters (escape sequences, carriage returns, bells…) are
/// shown as `\u{1b}`-style escapes instead of acting; tabs stay. A guest's output cannot move the cursor,
/// recolour, retitle or clear the reader's terminal.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape_control;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape_control("plain\ttext ✓"), "plain\ttext ✓");
        assert_eq!(escape_control("\x1b[2Jgone\r\x07"), "\\u{1b}[2Jgone\\u{d}\\u{7}");
        assert_eq!(escape_control("\u{9b}31m"), "\\u{9b}31m", "C1 controls too");
    }
}
