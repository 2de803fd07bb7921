//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): reading and writing the `traceparent` and
//! `tracestate` headers, which carry a distributed trace into wisp, out of its guests' outbound requests and,
//! as the CloudEvents distributed-tracing extension of the same names, through the event queue. Pure: what
//! spans exist and who exports them is the binary's business; this only says what a header means.
//!
//! A header that is not exactly what the spec allows is ignored — the request starts a new trace — never an
//! error: tracing must not fail a request.

use std::fmt;

/// The header (and CloudEvents extension attribute) that carries the caller's trace and span.
pub const TRACEPARENT: &str = "traceparent";
/// The header (and CloudEvents extension attribute) that carries vendors' trace state.
pub const TRACESTATE: &str = "tracestate";

/// Most list members a `tracestate` may have.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;
/// Longest `tracestate` kept (the spec asks to propagate at least 512 characters; longer ones are cut down
/// by whole members, the longest first).
pub const MAX_TRACESTATE_BYTES: usize = 512;

/// A parsed `traceparent`: the trace, the caller's span in it, and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The id of the caller's span (never all zero): the parent of the span that continues the trace.
    pub parent_id: [u8; 8],
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

/// The `sampled` trace flag.
pub const FLAG_SAMPLED: u8 = 0x01;

impl TraceParent {
    /// Reads a `traceparent` header value (surrounding spaces and tabs allowed). `None` for anything the spec
    /// says to ignore: version `ff`, a version-00 value of another length than 55, uppercase hex, an all-zero
    /// trace or parent id, missing dashes. A later version is read by its version-00 prefix, as the spec asks
    /// (its 56th character, if any, must be a dash).
    pub fn parse(value: &str) -> Option<TraceParent> {
        let v = value.trim_matches([' ', '\t']).as_bytes();
        if v.len() < 55 {
            return None;
        }
        let version = hex_u8(&v[0..2])?;
        if version == 0xff {
            return None;
        }
        if version == 0 && v.len() != 55 {
            return None;
        }
        if v.len() > 55 && v[55] != b'-' {
            return None;
        }
        if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        hex_into(&v[3..35], &mut trace_id)?;
        let mut parent_id = [0u8; 8];
        hex_into(&v[36..52], &mut parent_id)?;
        let flags = hex_u8(&v[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent { trace_id, parent_id, flags })
    }

    /// Whether the caller recorded its span (`sampled` flag).
    pub fn sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex_string(&self.trace_id)
    }

    /// The parent id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex_string(&self.parent_id)
    }
}

/// Writes the header value wisp sends: always version `00` (the one it speaks), 55 characters.
impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", hex_string(&self.trace_id), hex_string(&self.parent_id), self.flags)
    }
}

/// A trace context: where a trace continues from, and the vendors' `tracestate` that travels with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// Trace, parent span and flags.
    pub parent: TraceParent,
    /// The `tracestate` list, normalised ([`tracestate`]); `None` when absent, empty or unusable.
    pub state: Option<String>,
}

impl TraceContext {
    /// The context of a request's headers: every `traceparent` value and every `tracestate` value. More than
    /// one `traceparent`, or an unusable one, is no context (the spec: ignore it, start a new trace); the
    /// `tracestate` values are one list, joined in order, read only when the `traceparent` is usable.
    pub fn from_headers<'a>(
        traceparents: impl IntoIterator<Item = &'a [u8]>,
        tracestates: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<TraceContext> {
        let mut parents = traceparents.into_iter();
        let first = parents.next()?;
        if parents.next().is_some() {
            return None;
        }
        let parent = TraceParent::parse(std::str::from_utf8(first).ok()?)?;
        let mut joined = String::new();
        for s in tracestates {
            let Ok(s) = std::str::from_utf8(s) else { return Some(TraceContext { parent, state: None }) };
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(s);
        }
        Some(TraceContext { parent, state: tracestate(&joined) })
    }

    /// The context of an event's distributed-tracing extension attributes (`traceparent`, `tracestate`).
    pub fn from_extensions(traceparent: Option<&str>, tracestate_value: Option<&str>) -> Option<TraceContext> {
        let parent = TraceParent::parse(traceparent?)?;
        Some(TraceContext { parent, state: tracestate_value.and_then(tracestate) })
    }
}

/// A `tracestate` value as wisp keeps and forwards it: its list members (`key=value`), empty members dropped,
/// spaces around them trimmed, joined with `,`. `None` when it has no member, more than
/// [`MAX_TRACESTATE_MEMBERS`], a malformed or repeated key, or a malformed value (the spec allows dropping
/// the whole header then). Longer than [`MAX_TRACESTATE_BYTES`]: members longer than 128 characters go
/// first, then members from the end, until it fits.
pub fn tracestate(value: &str) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    for m in value.split(',') {
        let m = m.trim_matches([' ', '\t']);
        if m.is_empty() {
            continue;
        }
        let (key, val) = m.split_once('=')?;
        if !valid_key(key) || !valid_value(val) {
            return None;
        }
        if members.iter().any(|o| o.split_once('=').is_some_and(|(k, _)| k == key)) {
            return None;
        }
        members.push(m);
        if members.len() > MAX_TRACESTATE_MEMBERS {
            return None;
        }
    }
    let len = |ms: &[&str]| ms.iter().map(|m| m.len()).sum::<usize>() + ms.len().saturating_sub(1);
    if len(&members) > MAX_TRACESTATE_BYTES {
        members.retain(|m| m.len() <= 128);
        while len(&members) > MAX_TRACESTATE_BYTES {
            members.pop();
        }
    }
    (!members.is_empty()).then(|| members.join(","))
}

/// `key = simple-key / multi-tenant-key`: `[a-z][a-z0-9_\-*/]{0,255}`, or `tenant@system` with a tenant of
/// `[a-z0-9][a-z0-9_\-*/]{0,240}` and a system of `[a-z][a-z0-9_\-*/]{0,13}`.
fn valid_key(key: &str) -> bool {
    let rest_ok = |s: &str| s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/'));
    match key.split_once('@') {
        None => (1..=256).contains(&key.len()) && key.as_bytes()[0].is_ascii_lowercase() && rest_ok(&key[1..]),
        Some((tenant, system)) => {
            (1..=241).contains(&tenant.len())
                && (1..=14).contains(&system.len())
                && matches!(tenant.as_bytes()[0], b'a'..=b'z' | b'0'..=b'9')
                && rest_ok(&tenant[1..])
                && system.as_bytes()[0].is_ascii_lowercase()
                && rest_ok(&system[1..])
        }
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII except `,` and `=`, at most 256 characters, not ending in
/// a space.
fn valid_value(v: &str) -> bool {
    (1..=256).contains(&v.len())
        && v.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !v.ends_with(' ')
}

/// Lowercase hex digits only: the spec's `HEXDIGLC`.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

fn hex_u8(two: &[u8]) -> Option<u8> {
    Some(hex_digit(two[0])? << 4 | hex_digit(two[1])?)
}

fn hex_into(digits: &[u8], out: &mut [u8]) -> Option<()> {
    for (i, o) in out.iter_mut().enumerate() {
        *o = hex_u8(&digits[2 * i..2 * i + 2])?;
    }
    Some(())
}

fn hex_string(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0x0f) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_version_00_header_reads_and_writes_back_the_same() {
        let p = TraceParent::parse(GOOD).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.parent_id_hex(), "00f067aa0ba902b7");
        assert!(p.sampled());
        assert_eq!(p.to_string(), GOOD);
        let unsampled = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled());
        // Surrounding whitespace is not part of the value.
        assert_eq!(TraceParent::parse(&format!(" \t{GOOD} ")), Some(p));
    }

    #[test]
    fn what_the_spec_says_to_ignore_is_ignored() {
        let bad = [
            // Version ff is forbidden.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // All-zero ids.
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // Uppercase hex, anywhere.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // Lengths: short ids, a long version-00 value, nothing at all.
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
            "",
            "00",
            // Wrong separators, non-hex characters.
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Multi-byte text where hex belongs (same byte length as a good value).
            "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
        ];
        for b in bad {
            assert_eq!(TraceParent::parse(b), None, "{b:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_version_00_prefix() {
        let p = TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")
            .unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        // Written back, it is version 00: the one wisp speaks.
        assert_eq!(p.to_string(), GOOD);
        assert!(TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_some());
        // After the prefix, only a dash may follow.
        assert_eq!(TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x"), None);
        // Flags beyond `sampled` are kept as sent.
        assert_eq!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").unwrap().flags, 9);
    }

    #[test]
    fn headers_give_a_context_only_from_one_usable_traceparent() {
        let h = |ps: &[&'static str], ss: &[&'static str]| {
            TraceContext::from_headers(ps.iter().map(|p| p.as_bytes()), ss.iter().map(|s| s.as_bytes()))
        };
        let cx = h(&[GOOD], &["congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7"]).unwrap();
        assert_eq!(cx.parent, TraceParent::parse(GOOD).unwrap());
        assert_eq!(cx.state.as_deref(), Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"));
        assert_eq!(h(&[GOOD], &[]).unwrap().state, None);
        assert_eq!(h(&[], &["congo=t61rcWkgMzE"]), None);
        assert_eq!(h(&[GOOD, GOOD], &[]), None, "two traceparent headers: ignored");
        assert_eq!(h(&["00-garbage"], &["congo=t61rcWkgMzE"]), None);
        // A bad tracestate costs the state, not the trace.
        assert_eq!(h(&[GOOD], &["not a member"]).unwrap().state, None);
        let from_ext = TraceContext::from_extensions(Some(GOOD), Some("a=1")).unwrap();
        assert_eq!(from_ext.state.as_deref(), Some("a=1"));
        assert_eq!(TraceContext::from_extensions(None, Some("a=1")), None);
        assert_eq!(TraceContext::from_extensions(Some("junk"), None), None);
    }

    #[test]
    fn tracestate_keeps_valid_members_and_drops_bad_headers() {
        assert_eq!(
            tracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE").as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(tracestate(" , a=1,,b=2 ,").as_deref(), Some("a=1,b=2"));
        // Spaces around a member are list whitespace, not part of its value.
        assert_eq!(tracestate("a=x \t,b=y").as_deref(), Some("a=x,b=y"));
        assert_eq!(tracestate("tenant@vendor=x").as_deref(), Some("tenant@vendor=x"));
        assert_eq!(tracestate("0tenant@vendor=x").as_deref(), Some("0tenant@vendor=x"));
        assert_eq!(tracestate(""), None);
        assert_eq!(tracestate(" , "), None);
        for bad in ["novalue", "a=", "A=1", "0a=1", "a=1,a=2", "a=b=c", "a=x\ty", "a=\u{7f}", "@v=1", "t@=1", "t@V=1"] {
            assert_eq!(tracestate(bad), None, "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(tracestate(&many.join(",")), None, "33 members");
        assert!(tracestate(&many[..32].join(",")).is_some());
    }

    #[test]
    fn a_long_tracestate_loses_its_longest_members_then_its_last() {
        let long = format!("big={}", "x".repeat(200));
        let small: Vec<String> = (0..20).map(|i| format!("k{i:02}={}", "v".repeat(20))).collect();
        let value = format!("{},{long},{}", small[..10].join(","), small[10..].join(","));
        let kept = tracestate(&value).unwrap();
        assert!(kept.len() <= MAX_TRACESTATE_BYTES, "{}", kept.len());
        assert!(!kept.contains("big="), "the member over 128 characters goes first");
        assert!(kept.starts_with("k00="), "{kept}");
        // 24-byte members and commas: 20 of them make 499 bytes, all kept once the long one is gone.
        assert_eq!(kept.split(',').count(), 20);
        let more: Vec<String> = (0..30).map(|i| format!("k{i:02}={}", "v".repeat(20))).collect();
        let kept = tracestate(&more.join(",")).unwrap();
        assert!(kept.len() <= MAX_TRACESTATE_BYTES);
        assert!(kept.starts_with("k00=") && !kept.contains("k29="), "members from the end go next: {kept}");
    }
}
