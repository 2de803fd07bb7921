//! The CGI response format a WAGI module prints (RFC 3875 §6): header lines, a blank line, the body.
//! `Status:` sets the status; `Location:` without `Status:` means 302. Pure parsing; the host turns the
//! result into an HTTP response (and checks header names and values against HTTP's rules).

/// A parsed CGI response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgiHead<'a> {
    /// The status to answer with.
    pub status: u16,
    /// Header lines other than `Status`, as printed (value trimmed).
    pub headers: Vec<(&'a str, &'a str)>,
    /// Where the body starts in the output.
    pub body_start: usize,
}

/// Parses a WAGI module's output. Every error says what the module printed wrong.
pub fn parse(out: &[u8]) -> Result<CgiHead<'_>, String> {
    let (head_end, body_start) = split_head(out).ok_or_else(|| {
        "WAGI module printed no header block: print headers (at least `Content-Type: ...`), a blank line, then the body".to_string()
    })?;
    let head = std::str::from_utf8(&out[..head_end])
        .map_err(|_| "WAGI module printed headers that are not UTF-8".to_string())?;
    let mut status = None;
    let mut location = false;
    let mut headers = Vec::new();
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| format!("WAGI module printed a malformed header line `{line}`"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().and_then(|c| c.parse::<u16>().ok());
            status = Some(
                code.filter(|c| (100..=999).contains(c))
                    .ok_or_else(|| format!("WAGI module printed an invalid Status `{value}`"))?,
            );
            continue;
        }
        if name.eq_ignore_ascii_case("location") {
            location = true;
        }
        headers.push((name.trim(), value));
    }
    Ok(CgiHead { status: status.unwrap_or(if location { 302 } else { 200 }), headers, body_start })
}

/// The end of the header block and the start of the body: the first blank line (`\n\n` or `\r\n\r\n`).
fn split_head(out: &[u8]) -> Option<(usize, usize)> {
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output() {
        let r = parse(b"Content-Type: text/plain\n\nhello").unwrap();
        assert_eq!(
            (r.status, r.headers.clone(), &b"Content-Type: text/plain\n\nhello"[r.body_start..]),
            (200, vec![("Content-Type", "text/plain")], &b"hello"[..])
        );
        let r = parse(b"Status: 404 Not Found\r\nX-A: b\r\n\r\nnope").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(parse(b"Location: /elsewhere\n\n").unwrap().status, 302);
        assert!(parse(b"just a body").unwrap_err().contains("no header block"));
        assert!(parse(b"Bad Header\n\n").unwrap_err().contains("malformed header line"));
        assert!(parse(b"Status: abc\n\n").unwrap_err().contains("invalid Status"));
        assert!(parse(b"\xff: x\n\n").unwrap_err().contains("not UTF-8"));
    }
}
