//! The login step of `[auth] tokens = { login = ... }`: one HTTP/1.1 request before an
//! upgrade, whose JSON answer holds the connection's token.
//!
//! A deliberately small client (one request, `Connection: close`, a bounded answer read
//! until its `Content-Length`, its last chunk or EOF): a login endpoint is the target's
//! companion, and a full HTTP stack would be most of this crate's size.

use crate::model::path::lookup;
use crate::model::LoginSpec;
use crate::plan::{expand_fixed_text, Vars};
use rustls::pki_types::ServerName;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::http::Uri;

/// Most bytes of a login answer read: a token response, not a download.
const MAX_ANSWER: usize = 1 << 20;

/// Why a login gave no token. Never holds the token or the answer's body (which may hold
/// one under another name).
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login URL {0:?} is not an http:// or https:// URL with a host")]
    Url(String),
    #[error("https login needs TLS, which this run could not set up")]
    NoTls,
    #[error("login: cannot connect to {host}: {source}")]
    Connect {
        host: String,
        source: std::io::Error,
    },
    #[error("login: {0}")]
    Io(#[from] std::io::Error),
    #[error("login: no answer within {0:?}")]
    Timeout(Duration),
    #[error("login: the answer is not HTTP/1.x")]
    NotHttp,
    /// A status outside 2xx, with the answer's body (shown with the refusal, as an
    /// upgrade refusal's is).
    #[error("login answered {0}")]
    Status(u16, Vec<u8>),
    #[error("login: the answer is not JSON")]
    NotJson,
    #[error("login: the answer has no string at {0:?}")]
    NoToken(String),
}

/// Sends the login request of `spec` for the connection `vars` describes and returns the
/// token its answer holds; bounded by `spec.timeout`.
pub async fn fetch(
    spec: &LoginSpec,
    vars: &Vars<'_>,
    tls: Option<&TlsConnector>,
) -> Result<String, LoginError> {
    tokio::time::timeout(spec.timeout, exchange(spec, vars, tls))
        .await
        .map_err(|_| LoginError::Timeout(spec.timeout))?
}

async fn exchange(
    spec: &LoginSpec,
    vars: &Vars<'_>,
    tls: Option<&TlsConnector>,
) -> Result<String, LoginError> {
    let url = expand_fixed_text(&spec.url, vars);
    // A URL from the environment is named as written, a literal one with its
    // credentials masked: either may hold a key.
    let bad_url = || {
        LoginError::Url(if spec.url.is_env() {
            spec.url.shown().to_string()
        } else {
            crate::model::url::shown_url(&url)
        })
    };
    let uri: Uri = url.parse().map_err(|_| bad_url())?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad_url()),
    };
    let host = uri.host().ok_or_else(bad_url)?.to_string();
    // `Uri` reads `:99999` or `:abc` as no port at all: refused, not sent to the default.
    let port = crate::model::url::explicit_port(&url)
        .map_err(|_| bad_url())?
        .unwrap_or(if https { 443 } else { 80 });
    let request = request(spec, vars, &uri, &host);
    let bare = host.trim_matches(['[', ']']).to_string();
    let tcp = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|source| LoginError::Connect {
            host: format!("{host}:{port}"),
            source,
        })?;
    let (status, body) = if https {
        let tls = tls.ok_or(LoginError::NoTls)?;
        let name = ServerName::try_from(bare).map_err(|_| bad_url())?;
        let stream = tls.connect(name, tcp).await?;
        send(stream, &request).await?
    } else {
        send(tcp, &request).await?
    };
    if !(200..300).contains(&status) {
        return Err(LoginError::Status(status, body));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).map_err(|_| LoginError::NotJson)?;
    match lookup(&json, &spec.token) {
        Some(serde_json::Value::String(token)) if !token.is_empty() => Ok(token.clone()),
        _ => Err(LoginError::NoToken(spec.token.clone())),
    }
}

/// The request's bytes: placeholders filled, `Content-Length` for a body, and
/// `Content-Type: application/json` when a body has no type of its own.
fn request(spec: &LoginSpec, vars: &Vars<'_>, uri: &Uri, host: &str) -> Vec<u8> {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host, |a| a.as_str());
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n",
        spec.method
    );
    let body = spec.body.as_deref().map(|b| expand_fixed_text(b, vars));
    let mut typed = false;
    for (name, value) in &spec.headers {
        typed |= name.eq_ignore_ascii_case("content-type");
        head += &format!("{name}: {}\r\n", expand_fixed_text(value, vars));
    }
    if let Some(body) = &body {
        if !typed {
            head += "Content-Type: application/json\r\n";
        }
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    head += "\r\n";
    let mut bytes = head.into_bytes();
    bytes.extend(body.unwrap_or_default().into_bytes());
    bytes
}

/// Writes `request` and reads the answer: its status and body.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<(u16, Vec<u8>), LoginError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(answer) = complete(&buf, n == 0)? {
            return Ok(answer);
        }
        if n == 0 || buf.len() > MAX_ANSWER {
            return Err(LoginError::NotHttp);
        }
    }
}

/// The status and body once `buf` holds a whole answer (`eof`: nothing more will come).
fn complete(buf: &[u8], eof: bool) -> Result<Option<(u16, Vec<u8>)>, LoginError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let start = match response.parse(buf) {
        Ok(httparse::Status::Complete(start)) => start,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(LoginError::NotHttp),
    };
    let status = response.code.ok_or(LoginError::NotHttp)?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let body = buf.get(start..).unwrap_or_default();
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return Ok(dechunk(body).map(|b| (status, b)));
    }
    if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        return Ok((body.len() >= length).then(|| (status, body[..length].to_vec())));
    }
    Ok(eof.then(|| (status, body.to_vec())))
}

/// A chunked body decoded, once its last chunk arrived; `None` before.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_length_by_chunks_or_to_eof() {
        let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcdXX";
        assert_eq!(
            complete(by_length, false).unwrap(),
            Some((200, b"abcd".to_vec()))
        );
        assert_eq!(complete(&by_length[..40], false).unwrap(), None);
        let chunked = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            complete(chunked, false).unwrap(),
            Some((201, b"abcde".to_vec()))
        );
        assert_eq!(complete(&chunked[..60], false).unwrap(), None);
        let to_eof = b"HTTP/1.0 401 Unauthorized\r\n\r\nno";
        assert_eq!(complete(to_eof, false).unwrap(), None);
        assert_eq!(complete(to_eof, true).unwrap(), Some((401, b"no".to_vec())));
        assert!(complete(b"SSH-2.0-OpenSSH\r\n\r\n", true).is_err());
    }

    #[test]
    fn the_request_fills_placeholders_and_types_its_body() {
        let spec = LoginSpec {
            method: "POST".into(),
            url: "http://h:81/login?u={{user}}".into(),
            body: Some(r#"{"user":"u{{user}}"}"#.into()),
            headers: vec![("X-Group".into(), "{{group}}".into())],
            token: "token".into(),
            timeout: Duration::from_secs(1),
        };
        let vars = Vars {
            user: 7,
            conn: 9,
            group: "g",
            sub: "user-7",
            feed: None,
        };
        let url = expand_fixed_text(&spec.url, &vars);
        let uri: Uri = url.parse().unwrap();
        let text = String::from_utf8(request(&spec, &vars, &uri, "h")).unwrap();
        assert!(
            text.starts_with("POST /login?u=7 HTTP/1.1\r\nHost: h:81\r\n"),
            "{text}"
        );
        assert!(text.contains("X-Group: g\r\n"));
        assert!(
            text.contains(
                "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"user\":\"u7\"}"
            ),
            "{text}"
        );
    }
}
