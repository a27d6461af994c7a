//! The S3 remote: any store that speaks the S3 API (AWS S3, Garage, Ceph RGW, MinIO,
//! s3s-fs), over blocking HTTP(S) through `ureq` (rustls for TLS), each request signed
//! with AWS Signature V4 by `rusty-s3` (as a presigned URL, so no body has to be hashed
//! before it is sent).
//!
//! S3 has no rename, so nothing is written under a temp name: a PUT is atomic (an object
//! appears whole or not at all), and every name trove writes besides `TROVE_REMOTE` and a
//! lock is named by its content, so writing it twice, from two clients at once or after a
//! crash, writes the same bytes. Nothing relies on conditional writes (Garage ignores
//! `If-None-Match`). A large object goes up as a multipart upload, its parts in
//! parallel; one that fails or is interrupted is aborted, and one a killed push left is
//! invisible to readers (and removed by the bucket's lifecycle rule, see docs/remotes.md).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rusty_s3::actions::{
    CompleteMultipartUpload, CreateMultipartUpload, DeleteObjectsResponse, ListObjectsV2, ObjectIdentifier,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use super::backend::{Backend, Listed};
use super::{Remote, Settings, aws};
use crate::error::{Error, RemoteFailure, Result};

const DEFAULT_JOBS: usize = 8;
/// How long a signed request stays valid (it is signed just before it is sent).
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);
/// Attempts of one request that fails in a way that may pass (5xx, SlowDown, a reset).
const ATTEMPTS: u32 = 4;
/// Objects larger than this go up as multipart uploads (the `multipart_threshold`
/// setting, in MiB, changes it).
pub const MULTIPART_THRESHOLD: u64 = 64 << 20;
/// The largest part, and S3's smallest.
const PART_MAX: u64 = 16 << 20;
const PART_MIN: u64 = 5 << 20;
/// S3 allows 10,000 parts per upload.
const PARTS_MAX: u64 = 10_000;
/// Parts of one upload sent at once.
const PART_THREADS: usize = 4;
/// Ranged reads of one [`Backend::read_many`] call sent at once.
const READ_THREADS: usize = 4;
/// Keys per DeleteObjects request (S3's limit).
const DELETE_BATCH: usize = 1000;

/// What an S3 URL names: a bucket and a key prefix (no slashes at either end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

/// Parse the part of `s3://BUCKET[/PREFIX]` after the scheme.
pub fn parse(rest: &str) -> std::result::Result<Location, String> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') || bucket.contains(':') {
        return Err(
            "credentials do not belong in URLs; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, \
             or `trove remote set NAME secret_access_key … --local`"
                .into(),
        );
    }
    let ok = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(format!(
            "`{bucket}` is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)"
        ));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|part| part == "." || part == "..") || prefix.contains("//") {
        return Err(format!("the key prefix `{prefix}` has an empty, `.` or `..` part"));
    }
    Ok(Location { bucket: bucket.to_string(), prefix: prefix.to_string() })
}

/// A configured S3 remote.
pub struct S3Remote {
    name: String,
    url: String,
    client: Arc<Client>,
    jobs: Option<usize>,
    layout: u64,
}

/// Open the S3 remote of `settings` at `location`: resolve the endpoint, region and
/// credentials (no request is sent yet).
pub fn open(settings: &Settings, location: Location) -> Result<Box<dyn Remote>> {
    let s3 = &settings.s3;
    let usage = |m: String| Error::Usage(format!("remote `{}`: {m}", settings.name));
    let region =
        s3.region.clone().or_else(|| aws::region(&s3.sources)).unwrap_or_else(|| "us-east-1".to_string());
    let (endpoint, path_style) = match &s3.endpoint {
        Some(e) => {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(usage(format!(
                    "endpoint `{e}` needs a scheme: https://HOST[:PORT] (or http:// for a server without TLS)"
                )));
            }
            (e.trim_end_matches('/').to_string(), s3.path_style.unwrap_or(true))
        }
        None => (format!("https://s3.{region}.amazonaws.com"), s3.path_style.unwrap_or(false)),
    };
    let base = endpoint.parse().map_err(|e| usage(format!("endpoint `{endpoint}`: {e}")))?;
    let style = if path_style { UrlStyle::Path } else { UrlStyle::VirtualHost };
    let bucket = Bucket::new(base, style, location.bucket.clone(), region.clone())
        .map_err(|e| usage(format!("endpoint `{endpoint}`: {e}")))?;
    let keys = aws::keys(&s3.sources).ok_or_else(|| {
        Error::remote(
            &settings.name,
            RemoteFailure::Auth,
            format!(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, add profile `{}` to \
                 ~/.aws/credentials, or run `trove remote set {} access_key_id …` and \
                 `trove remote set {} secret_access_key … --local`",
                aws::profile_name(&s3.sources),
                settings.name,
                settings.name
            ),
        )
    })?;
    let credentials = match &keys.session_token {
        Some(t) => Credentials::new_with_token(&keys.access_key_id, &keys.secret_access_key, t),
        None => Credentials::new(&keys.access_key_id, &keys.secret_access_key),
    };
    let ca_file = s3.ca_file.clone().or_else(|| std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from));
    let agent = agent(&settings.name, ca_file.as_deref())?;
    let threshold = s3.multipart_threshold.unwrap_or(MULTIPART_THRESHOLD).max(PART_MIN);
    let client = Client {
        remote: settings.name.clone(),
        endpoint,
        bucket,
        credentials,
        key_source: keys.source,
        prefix: location.prefix,
        agent,
        threshold,
        part_size: threshold.clamp(PART_MIN, PART_MAX),
        unreachable: std::sync::Mutex::new(None),
    };
    Ok(Box::new(S3Remote {
        name: settings.name.clone(),
        url: settings.url.clone(),
        client: Arc::new(client),
        jobs: settings.jobs,
        layout: settings.layout.unwrap_or(crate::store::NEW_LAYOUT),
    }))
}

/// The HTTP agent: certificates checked against the webpki roots, or only against the
/// CAs in `ca_file` when one is given; no redirects (a signed request cannot follow one).
fn agent(remote: &str, ca_file: Option<&Path>) -> Result<ureq::Agent> {
    let roots = crate::tls::root_certs(ca_file).map_err(|m| {
        let path = ca_file.expect("only a CA file can be wrong").display();
        Error::remote(remote, RemoteFailure::HostKey, format!("ca_file {path}: {m}"))
    })?;
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .user_agent(concat!("trove/", env!("CARGO_PKG_VERSION")))
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .new_agent())
}

impl Remote for S3Remote {
    fn name(&self) -> &str {
        &self.name
    }
    fn url(&self) -> &str {
        &self.url
    }
    fn connect(&self) -> Result<Box<dyn Backend>> {
        // A connection costs nothing until its first request; a server found unreachable
        // stays so for this command, or every transfer would wait through its retries.
        self.client.reachable()?;
        Ok(Box::new(S3Backend { client: Arc::clone(&self.client) }))
    }
    fn default_jobs(&self) -> usize {
        self.jobs.unwrap_or(DEFAULT_JOBS)
    }
    fn new_layout(&self) -> u64 {
        self.layout
    }
}

/// Everything requests need; shared by the connections (ureq pools the TCP/TLS ones).
struct Client {
    remote: String,
    endpoint: String,
    bucket: Bucket,
    credentials: Credentials,
    /// Where the keys came from, for error messages.
    key_source: String,
    prefix: String,
    agent: ureq::Agent,
    threshold: u64,
    part_size: u64,
    /// Set when a request could not reach the server after its retries: later requests
    /// fail at once with the same error.
    unreachable: std::sync::Mutex<Option<String>>,
}

/// A request's body.
#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path),
}

type Response = ureq::http::Response<ureq::Body>;

impl Client {
    /// The object key of remote path `path`.
    fn key(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{path}", self.prefix),
        }
    }

    /// The listing prefix of folder `dir` (ends with `/`, or is empty for the bucket's top).
    fn dir_prefix(&self, dir: &str) -> String {
        let key = self.key(dir.trim_end_matches('/'));
        if key.is_empty() { key } else { format!("{key}/") }
    }

    /// The error that made the server unreachable, once a request found it so.
    fn reachable(&self) -> Result<()> {
        match self.unreachable.lock().expect("unreachable").clone() {
            Some(message) => Err(self.error(RemoteFailure::Connect, message)),
            None => Ok(()),
        }
    }

    fn error(&self, kind: RemoteFailure, message: impl Into<String>) -> Error {
        Error::remote(&self.remote, kind, message)
    }

    /// Send one request, signed afresh for each attempt by `sign`, retrying what may pass
    /// (connection failures, 5xx, SlowDown) with backoff. Any other answer is returned,
    /// for the caller to read or turn into an error with [`Client::failed`].
    fn send(
        &self,
        what: &str,
        sign: &dyn Fn() -> (ureq::http::Method, url::Url),
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<Response> {
        self.reachable()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (method, url) = sign();
            let mut request = ureq::http::Request::builder().method(method).uri(url.as_str());
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            let sent = match body {
                Body::Empty => self.agent.run(request.body(()).expect("a valid request")),
                Body::Bytes(bytes) => self.agent.run(request.body(bytes).expect("a valid request")),
                Body::File(path) => {
                    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                    self.agent.run(request.body(file).expect("a valid request"))
                }
            };
            let outcome = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status >= 500 || status == 429 {
                        let (code, message) = error_of(response);
                        Err(self.error(RemoteFailure::Io, format!("{what}: HTTP {status} {code} {message}")))
                    } else {
                        return Ok(response);
                    }
                }
                Err(e) => Err(self.transport(what, e)),
            };
            match outcome {
                Err(e) if attempt < ATTEMPTS && e.can_retry() && crate::interrupt::signal().is_none() => {
                    std::thread::sleep(Duration::from_millis(100 << attempt.min(5)));
                }
                Err(Error::Remote { kind: RemoteFailure::Connect, message, .. }) => {
                    *self.unreachable.lock().expect("unreachable") = Some(message.clone());
                    return Err(self.error(RemoteFailure::Connect, message));
                }
                other => return other,
            }
        }
    }

    /// The error for a request that got no answer.
    fn transport(&self, what: &str, e: ureq::Error) -> Error {
        use std::io::ErrorKind as K;
        let tls = match &e {
            ureq::Error::Rustls(_) | ureq::Error::Tls(_) | ureq::Error::Pem(_) => true,
            ureq::Error::Io(io) => io.to_string().contains("certificate"),
            _ => false,
        };
        let unreachable = match &e {
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
            ureq::Error::Io(io) => matches!(io.kind(), K::ConnectionRefused | K::AddrNotAvailable),
            _ => false,
        };
        let (endpoint, remote) = (&self.endpoint, &self.remote);
        if tls {
            self.error(
                RemoteFailure::HostKey,
                format!(
                    "{what}: the TLS connection to {endpoint} failed: {e}; for a server whose certificate a \
                     private CA signed, set `trove remote set {remote} ca_file PATH`"
                ),
            )
        } else if unreachable {
            self.error(
                RemoteFailure::Connect,
                format!("{what}: cannot reach {endpoint} ({e}); check the endpoint setting and that the server runs"),
            )
        } else if let ureq::Error::Timeout(_) = e {
            self.error(RemoteFailure::Connect, format!("{what}: {endpoint} timed out: {e}"))
        } else {
            self.error(RemoteFailure::Io, format!("{what}: {e}"))
        }
    }

    /// The error for an answer that is not a success: read the S3 error code and say
    /// what it means and what to do.
    fn failed(&self, what: &str, response: Response) -> Error {
        let status = response.status().as_u16();
        let skew = clock_skew(&response);
        let region = header(&response, "x-amz-bucket-region");
        let (code, message) = error_of(response);
        let detail = if message.is_empty() { code.clone() } else { format!("{code}: {message}") };
        let bucket = self.bucket.name();
        let (kind, text) = match code.as_str() {
            "NoSuchKey" => (RemoteFailure::NotFound, format!("{what}: not found")),
            "NoSuchBucket" => (RemoteFailure::NotFound, self.no_bucket()),
            // (s3s-fs answers an unknown key with NotSignedUp.)
            "InvalidAccessKeyId" | "NotSignedUp" => (
                RemoteFailure::Auth,
                format!(
                    "the server does not know the access key `{}` (InvalidAccessKeyId), from {}; check the key",
                    self.credentials.key(),
                    self.key_source
                ),
            ),
            "SignatureDoesNotMatch" => (
                RemoteFailure::Auth,
                format!(
                    "the secret key does not match access key `{}` (SignatureDoesNotMatch), from {}; check the \
                     secret (and the region setting)",
                    self.credentials.key(),
                    self.key_source
                ),
            ),
            "RequestTimeTooSkewed" => (RemoteFailure::Auth, skew_message(skew, &detail)),
            "ExpiredToken" | "TokenRefreshRequired" => (
                RemoteFailure::Auth,
                format!(
                    "the session token from {} has expired ({detail}); renew the credentials",
                    self.key_source
                ),
            ),
            "AuthorizationHeaderMalformed" | "AuthorizationQueryParametersError" | "PermanentRedirect" => (
                RemoteFailure::Auth,
                match region {
                    Some(r) => format!(
                        "bucket `{bucket}` is in region {r} ({detail}); run `trove remote set {} region {r}`",
                        self.remote
                    ),
                    None => format!("{what}: {detail}; check the region setting"),
                },
            ),
            _ if status == 301 => (
                RemoteFailure::Auth,
                format!(
                    "bucket `{bucket}` is in another region{} (HTTP 301); set it with `trove remote set {} region …`",
                    region.map(|r| format!(" ({r})")).unwrap_or_default(),
                    self.remote
                ),
            ),
            _ if status == 403 && skew.is_some_and(|s| s.abs() > 300) => {
                (RemoteFailure::Auth, skew_message(skew, &detail))
            }
            "AccessDenied" | "AllAccessDisabled" | "InvalidSecurity" => (
                RemoteFailure::Denied,
                format!(
                    "{what}: access denied ({detail}) for key `{}`; it needs s3:ListBucket, s3:GetObject, \
                     s3:PutObject and s3:DeleteObject on s3://{bucket} (see docs/remotes.md)",
                    self.credentials.key()
                ),
            ),
            // Ceph RGW's and MinIO's codes for a full store or quota; 507 is WebDAV's.
            "QuotaExceeded" | "XMinioStorageFull" | "XMinioAdminBucketQuotaExceeded" => {
                (RemoteFailure::Full, format!("{what}: the store refused it ({detail})"))
            }
            _ if status == 507 => {
                (RemoteFailure::Full, format!("{what}: the store is full (HTTP 507 {detail})"))
            }
            _ if status == 404 => (RemoteFailure::NotFound, format!("{what}: not found")),
            _ if status == 403 => {
                (RemoteFailure::Denied, format!("{what}: access denied (HTTP 403 {detail})"))
            }
            _ => (RemoteFailure::Protocol, format!("{what}: HTTP {status} {detail}")),
        };
        self.error(kind, text)
    }

    /// The text of an answer that must be 200 OK (an XML document), else its error.
    fn text_of(&self, what: &str, mut response: Response) -> Result<String> {
        if response.status().as_u16() != 200 {
            return Err(self.failed(what, response));
        }
        response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| self.error(RemoteFailure::Io, format!("{what}: reading the answer: {e}")))
    }

    fn no_bucket(&self) -> String {
        format!(
            "bucket `{0}` does not exist at {1}; create it (e.g. `aws s3 mb s3://{0}`) or check the URL and endpoint",
            self.bucket.name(),
            self.endpoint
        )
    }

    /// Sign `action` now (the closure [`Client::send`] calls for each attempt).
    fn signed<'a, A: S3Action<'a>>(action: &A) -> (ureq::http::Method, url::Url) {
        let method = match A::METHOD {
            rusty_s3::Method::Head => ureq::http::Method::HEAD,
            rusty_s3::Method::Get => ureq::http::Method::GET,
            rusty_s3::Method::Post => ureq::http::Method::POST,
            rusty_s3::Method::Put => ureq::http::Method::PUT,
            rusty_s3::Method::Delete => ureq::http::Method::DELETE,
        };
        (method, action.sign(SIGNED_FOR))
    }

    /// One page of keys under `prefix`; `delimiter` groups what is below the next `/`.
    fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
        max_keys: Option<usize>,
    ) -> Result<(rusty_s3::actions::ListObjectsV2Response, Option<jiff::Timestamp>)> {
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        if !prefix.is_empty() {
            action.with_prefix(prefix);
        }
        if delimiter {
            action.with_delimiter("/");
        }
        if let Some(t) = token {
            action.with_continuation_token(t);
        }
        if let Some(m) = max_keys {
            action.with_max_keys(m);
        }
        let what = format!("listing {}", if prefix.is_empty() { "/" } else { prefix });
        let response = self.send(&what, &|| Self::signed(&action), &[], Body::Empty)?;
        let now = server_time(&response);
        let text = self.text_of(&what, response)?;
        let parsed = ListObjectsV2::parse_response(&text).map_err(|e| {
            self.error(RemoteFailure::Protocol, format!("{what}: the answer is not a listing: {e}"))
        })?;
        Ok((parsed, now))
    }

    /// Every object and subfolder directly under folder `dir`, page by page.
    fn list_all(&self, dir: &str) -> Result<(Vec<Listed>, Vec<String>)> {
        let prefix = self.dir_prefix(dir);
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let (page, now) = self.list_page(&prefix, true, token.as_deref(), None)?;
            for c in page.contents {
                let Some(name) = c.key.strip_prefix(&prefix) else { continue };
                if name.is_empty() || name.contains('/') {
                    continue;
                }
                let age =
                    match (now, c.last_modified.as_deref().and_then(|t| t.parse::<jiff::Timestamp>().ok())) {
                        (Some(now), Some(then)) => Some(Duration::from_secs(
                            now.as_second().saturating_sub(then.as_second()).max(0) as u64,
                        )),
                        _ => None,
                    };
                files.push(Listed { name: name.to_string(), size: c.size.unwrap_or(0), age });
            }
            for p in page.common_prefixes {
                if let Some(name) = p.prefix.strip_prefix(&prefix) {
                    let name = name.trim_end_matches('/');
                    if !name.is_empty() {
                        dirs.push(name.to_string());
                    }
                }
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok((files, dirs)),
            }
        }
    }

    /// Whether the bucket answers a listing (false: it does not exist).
    fn bucket_exists(&self) -> Result<bool> {
        match self.list_page(&self.dir_prefix(""), true, None, Some(1)) {
            Ok(_) => Ok(true),
            Err(Error::Remote { kind: RemoteFailure::NotFound, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// PUT `body` as `path` (one request), or as a multipart upload when it is large.
    fn put(&self, path: &str, body: Body<'_>) -> Result<()> {
        let size = match body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(p) => std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len(),
        };
        let key = self.key(path);
        if size > self.threshold {
            return self.put_multipart(path, &key, size, body);
        }
        let action = self.bucket.put_object(Some(&self.credentials), &key);
        let what = format!("writing {path}");
        let response = self.send(&what, &|| Self::signed(&action), &[], body)?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.failed(&what, response)),
        }
    }

    /// A multipart upload of `size` bytes: parts sent in parallel, then completed; aborted
    /// when a part fails or a signal arrives, so nothing is left behind.
    fn put_multipart(&self, path: &str, key: &str, size: u64, body: Body<'_>) -> Result<()> {
        let what = format!("writing {path}");
        let part_size = self.part_size.max(size.div_ceil(PARTS_MAX));
        let parts = size.div_ceil(part_size) as usize;
        let create = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key);
        let response = self.send(&what, &|| Self::signed(&create), &[], Body::Empty)?;
        let text = self.text_of(&what, response)?;
        let created = CreateMultipartUpload::parse_response(&text).map_err(|e| {
            self.error(RemoteFailure::Protocol, format!("{what}: starting a multipart upload: {e}"))
        })?;
        let upload_id = created.upload_id().to_string();
        let next = AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let etags: std::sync::Mutex<Vec<Option<String>>> = std::sync::Mutex::new(vec![None; parts]);
        let sent: Result<()> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..PART_THREADS.min(parts))
                .map(|_| {
                    s.spawn(|| -> Result<()> {
                        crate::interrupt::shield_this_thread();
                        let sent = (|| loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            // (After a failed part the upload is aborted: send no more.)
                            if i >= parts || failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            crate::interrupt::check()?;
                            let offset = i as u64 * part_size;
                            let len = part_size.min(size - offset) as usize;
                            let bytes = match body {
                                Body::Bytes(b) => {
                                    std::borrow::Cow::Borrowed(&b[offset as usize..offset as usize + len])
                                }
                                Body::File(p) => std::borrow::Cow::Owned(read_at(p, offset, len)?),
                                Body::Empty => unreachable!("an empty body is never multipart"),
                            };
                            let part = self.bucket.upload_part(
                                Some(&self.credentials),
                                key,
                                i as u16 + 1,
                                &upload_id,
                            );
                            let part_what = format!("{what} (part {} of {parts})", i + 1);
                            let response =
                                self.send(&part_what, &|| Self::signed(&part), &[], Body::Bytes(&bytes))?;
                            if !response.status().is_success() {
                                return Err(self.failed(&part_what, response));
                            }
                            let etag = header(&response, "etag").ok_or_else(|| {
                                self.error(
                                    RemoteFailure::Protocol,
                                    format!("{part_what}: the answer has no ETag"),
                                )
                            })?;
                            etags.lock().expect("etags")[i] = Some(etag);
                        })();
                        if sent.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        sent
                    })
                })
                .collect();
            let mut first_error = Ok(());
            for w in workers {
                let r = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                if first_error.is_ok() {
                    first_error = r;
                }
            }
            first_error
        });
        let completed = sent.and_then(|()| {
            let etags: Vec<String> =
                etags.into_inner().expect("etags").into_iter().map(|e| e.expect("every part sent")).collect();
            let complete = CompleteMultipartUpload::new(
                &self.bucket,
                Some(&self.credentials),
                key,
                &upload_id,
                etags.iter().map(String::as_str),
            );
            let signed = Self::signed(&complete);
            let xml = complete.body();
            let mut response = self.send(&what, &|| signed.clone(), &[], Body::Bytes(xml.as_bytes()))?;
            if response.status().as_u16() != 200 {
                return Err(self.failed(&what, response));
            }
            // S3 may answer 200 and report the failure in the body.
            let text = response.body_mut().read_to_string().unwrap_or_default();
            if text.contains("<Error>") {
                let code = between(&text, "<Code>", "</Code>").unwrap_or("an error");
                return Err(
                    self.error(RemoteFailure::Io, format!("{what}: completing the upload failed: {code}"))
                );
            }
            Ok(())
        });
        if completed.is_err() {
            let abort = self.bucket.abort_multipart_upload(Some(&self.credentials), key, &upload_id);
            let _ = self.send(&what, &|| Self::signed(&abort), &[], Body::Empty);
        }
        completed
    }

    /// GET `path` (a byte range of it when `range` is given); the answer is a success (200,
    /// 206) or 416, a range past the end.
    fn get(&self, path: &str, range: Option<(u64, u64)>) -> Result<Response> {
        let key = self.key(path);
        let action = self.bucket.get_object(Some(&self.credentials), &key);
        let what = format!("reading {path}");
        let headers: Vec<(&str, String)> = match range {
            Some((offset, len)) => vec![("range", format!("bytes={offset}-{}", offset + len - 1))],
            None => Vec::new(),
        };
        let response = self.send(&what, &|| Self::signed(&action), &headers, Body::Empty)?;
        match response.status().as_u16() {
            200 | 206 | 416 => Ok(response),
            _ => Err(self.failed(&what, response)),
        }
    }

    /// `len` bytes of `path` from `offset` (fewer where it ends).
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut response = self.get(path, Some((offset, len)))?;
        let status = response.status().as_u16();
        if status == 416 {
            return Ok(Vec::new()); // the range starts past the end
        }
        let mut bytes = Vec::with_capacity(len.min(64 << 20) as usize);
        let mut reader = response.body_mut().as_reader();
        let read = if status == 206 {
            (&mut reader).take(len).read_to_end(&mut bytes)
        } else {
            // The server sent the whole object: keep the range.
            std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
                .and_then(|_| (&mut reader).take(len).read_to_end(&mut bytes))
        };
        read.map_err(|e| self.error(RemoteFailure::Io, format!("reading {path}: {e}")))?;
        Ok(bytes)
    }

    fn delete(&self, path: &str) -> Result<()> {
        let key = self.key(path);
        let action = self.bucket.delete_object(Some(&self.credentials), &key);
        let what = format!("deleting {path}");
        let response = self.send(&what, &|| Self::signed(&action), &[], Body::Empty)?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(self.failed(&what, response)),
        }
    }

    /// Delete `paths` with DeleteObjects, 1,000 keys a request; those not deleted, with why.
    fn delete_many(&self, paths: &[String]) -> Vec<(String, Error)> {
        let mut failed = Vec::new();
        for batch in paths.chunks(DELETE_BATCH) {
            match self.delete_batch(batch) {
                Ok(errors) => failed.extend(errors),
                Err(e) => failed.extend(batch.iter().map(|p| (p.clone(), e.again(&self.remote)))),
            }
        }
        failed
    }

    /// One DeleteObjects request: the keys the store reports it could not delete.
    fn delete_batch(&self, batch: &[String]) -> Result<Vec<(String, Error)>> {
        let what = format!("deleting {} files", batch.len());
        let objects: Vec<ObjectIdentifier> =
            batch.iter().map(|p| ObjectIdentifier::new(self.key(p))).collect();
        let mut action = self.bucket.delete_objects(Some(&self.credentials), objects.iter());
        action.set_quiet(true);
        let signed = Self::signed(&action);
        let (xml, md5) = action.body_with_md5();
        let headers = [("content-md5", md5)];
        let response = self.send(&what, &|| signed.clone(), &headers, Body::Bytes(xml.as_bytes()))?;
        let text = self.text_of(&what, response)?;
        let answer = DeleteObjectsResponse::parse(&text).map_err(|e| {
            self.error(RemoteFailure::Protocol, format!("{what}: the answer is not a result: {e}"))
        })?;
        let prefix = self.dir_prefix("");
        Ok(answer
            .errors
            .into_iter()
            .map(|e| {
                let path = e.key.strip_prefix(&prefix).unwrap_or(&e.key).to_string();
                let error =
                    self.error(RemoteFailure::Io, format!("deleting {path}: {}: {}", e.code, e.message));
                (path, error)
            })
            .collect())
    }
}

/// `len` bytes of file `path` from `offset`.
fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = vec![0; len];
    file.read_exact_at(&mut bytes, offset).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// A header's value.
fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The server's clock, from its `Date` header.
fn server_time(response: &Response) -> Option<jiff::Timestamp> {
    let date = header(response, "date")?;
    jiff::fmt::rfc2822::parse(&date).ok().map(|z| z.timestamp())
}

/// How many seconds the server's clock is ahead of this machine's.
fn clock_skew(response: &Response) -> Option<i64> {
    server_time(response).map(|t| t.as_second() - jiff::Timestamp::now().as_second())
}

fn skew_message(skew: Option<i64>, detail: &str) -> String {
    match skew {
        Some(s) => format!(
            "this machine's clock is {} s {} the server's ({detail}); signed requests need clocks within 15 minutes: \
             set the clock (e.g. with NTP)",
            s.abs(),
            if s > 0 { "behind" } else { "ahead of" }
        ),
        None => format!("this machine's clock is off the server's ({detail}); set the clock (e.g. with NTP)"),
    }
}

/// The S3 error code and message of an error answer (empty when it has none).
fn error_of(mut response: Response) -> (String, String) {
    let text = response.body_mut().with_config().limit(1 << 20).read_to_string().unwrap_or_default();
    let code = between(&text, "<Code>", "</Code>").unwrap_or_default().to_string();
    let message = between(&text, "<Message>", "</Message>").unwrap_or_default().to_string();
    (code, message)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// One connection: requests go through the shared client's agent.
struct S3Backend {
    client: Arc<Client>,
}

impl Backend for S3Backend {
    fn root_exists(&mut self) -> Result<bool> {
        self.client.bucket_exists()
    }

    fn create_root(&mut self) -> Result<()> {
        // Buckets are made by their owner (with their region, policy and lifecycle);
        // under a bucket, a key prefix needs no making.
        if self.client.bucket_exists()? {
            return Ok(());
        }
        Err(self.client.error(RemoteFailure::NotFound, self.client.no_bucket()))
    }

    fn list(&mut self, dir: &str) -> Result<Vec<Listed>> {
        Ok(self.client.list_all(dir)?.0)
    }

    fn list_dirs(&mut self, dir: &str) -> Result<Vec<String>> {
        Ok(self.client.list_all(dir)?.1)
    }

    fn exists(&mut self, path: &str) -> Result<bool> {
        let c = &self.client;
        let key = c.key(path);
        let action = c.bucket.head_object(Some(&c.credentials), &key);
        let what = format!("looking for {path}");
        let response = c.send(&what, &|| Client::signed(&action), &[], Body::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(c.failed(&what, response)),
        }
    }

    fn read(&mut self, path: &str, size: Option<u64>, out: &mut dyn Write) -> Result<u64> {
        let mut response = self.client.get(path, None)?;
        let reader = response.body_mut().as_reader();
        let mut reader: Box<dyn Read> = match size {
            Some(s) => Box::new(reader.take(s)),
            None => Box::new(reader),
        };
        std::io::copy(&mut reader, out)
            .map_err(|e| self.client.error(RemoteFailure::Io, format!("reading {path}: {e}")))
    }

    fn read_range(&mut self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.client.read_range(path, offset, len)
    }

    /// HTTP/1.1 answers one request at a time per connection: the reads go out over
    /// [`READ_THREADS`] connections at once (a large object's chunks all come through one
    /// call), and reach `done` on this thread as they complete.
    fn read_many(
        &mut self,
        items: &[(String, u64, u64)],
        done: &mut dyn FnMut(usize, Result<Vec<u8>>),
    ) -> Result<()> {
        if items.len() < 2 {
            for (i, (path, offset, len)) in items.iter().enumerate() {
                done(i, self.client.read_range(path, *offset, *len));
            }
            return Ok(());
        }
        let next = AtomicUsize::new(0);
        let threads = READ_THREADS.min(items.len());
        // Bounded: reads wait while `done` catches up, so memory stays at a few reads.
        let (tx, rx) = std::sync::mpsc::sync_channel(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (tx, next, client) = (tx.clone(), &next, &self.client);
                s.spawn(move || {
                    crate::interrupt::shield_this_thread();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() || crate::interrupt::signal().is_some() {
                            return;
                        }
                        let (path, offset, len) = &items[i];
                        if tx.send((i, client.read_range(path, *offset, *len))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for (i, r) in rx {
                done(i, r);
            }
        });
        Ok(())
    }

    fn write_file(&mut self, path: &str, local: &Path) -> Result<()> {
        self.client.put(path, Body::File(local))
    }

    fn write_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.client.put(path, Body::Bytes(bytes))
    }

    fn replace(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        self.client.put(path, Body::Bytes(bytes))
    }

    fn delete(&mut self, path: &str) -> Result<()> {
        self.client.delete(path)
    }

    fn delete_many(&mut self, paths: &[String]) -> Vec<(String, Error)> {
        self.client.delete_many(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        assert_eq!(parse("data").unwrap(), Location { bucket: "data".into(), prefix: String::new() });
        assert_eq!(
            parse("my-bucket/team/x/").unwrap(),
            Location { bucket: "my-bucket".into(), prefix: "team/x".into() }
        );
        for bad in ["", "ab", "Upper", "a_b/x", "key:secret@bucket/x", "bkt/a//b", "bkt/../x", "-bucket"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_error_codes() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(between(xml, "<Code>", "</Code>"), Some("NoSuchKey"));
        assert_eq!(between(xml, "<Message>", "</Message>"), Some("gone"));
        assert_eq!(between(xml, "<Key>", "</Key>"), None);
    }
}
