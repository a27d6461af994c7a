//! An SFTP version 3 client (draft-ietf-secsh-filexfer-02) over any byte stream: a
//! channel of libssh2's session, or the pipes of the user's own `ssh -s … sftp`.
//!
//! libssh2's own SFTP API waits for each answer before the next request, so a small
//! object costs three round trips (open, read, close) and the server sits idle in
//! between. This client keeps many requests in flight, as OpenSSH's `sftp` does: for
//! batches of small files (`read_files`, `write_files`) and for the reads and writes of
//! one large file (`read_to`, `write_from`). The single-request calls (stat, mkdir,
//! rename, …) wait for their answer. Every call leaves no answer of its own unread, so
//! the next call starts in step; an error of the stream itself (the connection failed)
//! leaves the client unusable, and the backend opens a new connection.
//!
//! Answers in flight are kept below the channel's window (2 MiB in libssh2 and OpenSSH),
//! so the server never blocks on a full window while requests wait to be sent; with one
//! thread writing requests and reading answers, that is what keeps the pipes from
//! filling both ways at once.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{Read, Write};

const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_STAT: u8 = 17;
const FXP_OPENDIR: u8 = 11;
const FXP_READDIR: u8 = 12;
const FXP_REMOVE: u8 = 13;
const FXP_MKDIR: u8 = 14;
const FXP_RMDIR: u8 = 15;
const FXP_RENAME: u8 = 18;
const FXP_EXTENDED: u8 = 200;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXP_NAME: u8 = 104;
const FXP_ATTRS: u8 = 105;
const FXP_EXTENDED_REPLY: u8 = 201;
pub const FXF_READ: u32 = 1;
pub const FXF_WRITE: u32 = 2;
pub const FXF_CREAT: u32 = 8;
pub const FXF_EXCL: u32 = 0x20;
const ATTR_SIZE: u32 = 1;
const ATTR_UIDGID: u32 = 2;
const ATTR_PERMISSIONS: u32 = 4;
const ATTR_ACMODTIME: u32 = 8;
const ATTR_EXTENDED: u32 = 0x8000_0000;
pub const FX_OK: u32 = 0;
pub const FX_EOF: u32 = 1;
pub const FX_NO_SUCH_FILE: u32 = 2;
pub const FX_PERMISSION_DENIED: u32 = 3;
pub const FX_FAILURE: u32 = 4;
/// Codes of later SFTP versions some servers send anyway.
pub const FX_NO_SUCH_PATH: u32 = 10;
pub const FX_NO_SPACE: u32 = 14;
pub const FX_QUOTA_EXCEEDED: u32 = 15;

/// Bytes asked for by one READ or sent by one WRITE when the server does not say what it
/// takes (the draft's minimum every server handles).
const DEFAULT_IO_LEN: u64 = 32 << 10;
/// The most asked for or sent at once even when the server takes more.
const MAX_IO_LEN: u64 = 255 << 10;
/// Answer bytes (reads) or request bytes (writes) in flight at most: below the channel's
/// window (2 MiB in libssh2 and OpenSSH).
const IN_FLIGHT_BYTES: u64 = 1 << 20;
/// Requests in flight at most.
const IN_FLIGHT_REQUESTS: usize = 256;
/// The largest packet accepted from the server.
const MAX_PACKET: usize = 512 << 10;

/// What the connection runs over: a byte stream both ways.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Why a call failed.
#[derive(Debug)]
pub enum SftpError {
    /// The server answered with this status code and message.
    Status(u32, String),
    /// The stream failed, or the server broke the protocol: the client is unusable.
    Broken(String),
}

impl SftpError {
    /// The server has no such file or folder.
    pub fn not_found(&self) -> bool {
        matches!(self, SftpError::Status(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH, _))
    }

    pub fn code(&self) -> Option<u32> {
        match self {
            SftpError::Status(c, _) => Some(*c),
            SftpError::Broken(_) => None,
        }
    }
}

impl std::fmt::Display for SftpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SftpError::Status(code, msg) if msg.is_empty() => {
                write!(f, "{} (SFTP status {code})", status_text(*code))
            }
            SftpError::Status(code, msg) => write!(f, "{msg} (SFTP status {code})"),
            SftpError::Broken(why) => f.write_str(why),
        }
    }
}

fn status_text(code: u32) -> &'static str {
    match code {
        FX_EOF => "end of file",
        FX_NO_SUCH_FILE => "no such file",
        FX_PERMISSION_DENIED => "permission denied",
        FX_FAILURE => "failure",
        FX_NO_SPACE => "no space on filesystem",
        FX_QUOTA_EXCEEDED => "quota exceeded",
        _ => "error",
    }
}

type Res<T> = std::result::Result<T, SftpError>;

fn broken(why: impl std::fmt::Display) -> SftpError {
    SftpError::Broken(why.to_string())
}

/// An answer to a request that is not in flight: the channel cannot be trusted.
fn unknown_request(id: u32) -> SftpError {
    broken(format!("the server answered unknown request {id}"))
}

/// A file's attributes, as far as the server sent them.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    pub mtime: Option<u64>,
}

impl Attrs {
    pub fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o040000)
    }

    pub fn is_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o100000)
    }
}

/// An open file or folder on the server.
pub struct Handle(Vec<u8>);

/// How one file's download ended.
pub enum Outcome {
    /// Its first `size` bytes (fewer when the file is shorter).
    Data(Vec<u8>),
    /// The server has no such file.
    Missing,
    /// The server refused it (status code and message).
    Refused(String),
}

/// Why a streamed read or write stopped.
pub enum StreamError {
    /// The server refused (or the connection failed).
    Remote(SftpError),
    /// The local side failed: reading the source or writing the destination.
    Local(std::io::Error),
    /// Ctrl-C or a termination signal arrived.
    Interrupted,
}

impl From<SftpError> for StreamError {
    fn from(e: SftpError) -> Self {
        StreamError::Remote(e)
    }
}

/// What a streamed write sends.
pub enum Source<'a> {
    Read(&'a mut dyn Read),
    Bytes(&'a [u8]),
}

/// An SFTP session.
pub struct Client {
    stream: Box<dyn Stream>,
    next_id: u32,
    /// Bytes per READ and per WRITE.
    io_len: u64,
    extensions: HashSet<String>,
}

enum Req {
    Open(usize),
    Read { file: usize, offset: u64, len: u64 },
    Close(usize),
}

struct FileState {
    handle: Option<Vec<u8>>,
    data: Vec<u8>,
    /// Bytes asked for so far.
    asked: u64,
    /// READ requests in flight.
    reads: usize,
    /// The file ended (EOF) or failed; no more reads.
    ended: bool,
    failed: Option<Outcome>,
}

impl Client {
    /// Agree on version 3 over `stream`, which runs the server's `sftp` subsystem, and
    /// learn what the server takes (`limits@openssh.com`).
    pub fn start(stream: Box<dyn Stream>) -> Res<Client> {
        let mut client = Client { stream, next_id: 1, io_len: DEFAULT_IO_LEN, extensions: HashSet::new() };
        let mut init = vec![FXP_INIT];
        init.extend_from_slice(&3u32.to_be_bytes());
        client.send(&frame(init))?;
        let (kind, body) = client.recv()?;
        if kind != FXP_VERSION || body.len() < 5 {
            return Err(broken(format!("the server answered the SFTP greeting with packet type {kind}")));
        }
        let mut r = Reader(&body[5..]);
        while !r.0.is_empty() {
            let (Ok(name), Ok(_data)) = (r.string(), r.string()) else { break };
            client.extensions.insert(String::from_utf8_lossy(name).into_owned());
        }
        if client.extensions.contains("limits@openssh.com") {
            let (kind, body) = client.call(|p| put_string(p, b"limits@openssh.com"), FXP_EXTENDED)?;
            if kind == FXP_EXTENDED_REPLY {
                // max-packet-length, max-read-length, max-write-length, max-open-handles.
                let mut r = Reader(&body[5..]);
                let (_, read, write) = (r.u64()?, r.u64()?, r.u64()?);
                let len = read.min(write);
                if len > 0 {
                    client.io_len = len.min(MAX_IO_LEN);
                }
            }
        }
        Ok(client)
    }

    /// Whether the server offers extension `name` (e.g. `fsync@openssh.com`).
    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.contains(name)
    }

    /// How many READs or WRITEs of one file are kept in flight: [`IN_FLIGHT_BYTES`] in
    /// requests as large as the server takes, at most [`IN_FLIGHT_REQUESTS`].
    fn stream_budget(&self) -> usize {
        (IN_FLIGHT_BYTES / self.io_len).clamp(1, IN_FLIGHT_REQUESTS as u64) as usize
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// Send one request (`fill` writes what follows its id) and wait for its answer:
    /// the answer's type and its bytes (from the type byte).
    fn call(&mut self, fill: impl FnOnce(&mut Vec<u8>), kind: u8) -> Res<(u8, Vec<u8>)> {
        let id = self.take_id();
        let mut p = vec![kind];
        p.extend_from_slice(&id.to_be_bytes());
        fill(&mut p);
        self.send(&frame(p))?;
        let (kind, body) = self.recv()?;
        let got = Reader(&body[1..]).u32()?;
        if got != id {
            return Err(broken(format!("the server answered request {got} when {id} was asked")));
        }
        Ok((kind, body))
    }

    /// A call whose answer is a status: Ok for FX_OK.
    fn call_status(&mut self, fill: impl FnOnce(&mut Vec<u8>), kind: u8) -> Res<()> {
        let (kind, body) = self.call(fill, kind)?;
        status_of(kind, &body)
    }

    pub fn stat(&mut self, path: &str) -> Res<Attrs> {
        let (kind, body) = self.call(|p| put_string(p, path.as_bytes()), FXP_STAT)?;
        match kind {
            FXP_ATTRS => attrs(&mut Reader(&body[5..])),
            _ => Err(status_of(kind, &body)
                .err()
                .unwrap_or_else(|| broken("STAT answered with no attributes"))),
        }
    }

    pub fn mkdir(&mut self, path: &str, mode: u32) -> Res<()> {
        self.call_status(
            |p| {
                put_string(p, path.as_bytes());
                p.extend_from_slice(&ATTR_PERMISSIONS.to_be_bytes());
                p.extend_from_slice(&mode.to_be_bytes());
            },
            FXP_MKDIR,
        )
    }

    pub fn rmdir(&mut self, path: &str) -> Res<()> {
        self.call_status(|p| put_string(p, path.as_bytes()), FXP_RMDIR)
    }

    pub fn remove(&mut self, path: &str) -> Res<()> {
        self.call_status(|p| put_string(p, path.as_bytes()), FXP_REMOVE)
    }

    /// Rename `from` to `to`; SFTP version 3 refuses when `to` exists.
    pub fn rename(&mut self, from: &str, to: &str) -> Res<()> {
        self.call_status(
            |p| {
                put_string(p, from.as_bytes());
                put_string(p, to.as_bytes());
            },
            FXP_RENAME,
        )
    }

    /// Open `path` with `FXF_*` flags; a file it creates gets `mode`.
    pub fn open(&mut self, path: &str, flags: u32, mode: u32) -> Res<Handle> {
        let (kind, body) = self.call(
            |p| {
                put_string(p, path.as_bytes());
                p.extend_from_slice(&flags.to_be_bytes());
                if flags & FXF_CREAT != 0 {
                    p.extend_from_slice(&ATTR_PERMISSIONS.to_be_bytes());
                    p.extend_from_slice(&mode.to_be_bytes());
                } else {
                    p.extend_from_slice(&0u32.to_be_bytes());
                }
            },
            FXP_OPEN,
        )?;
        handle_of(kind, &body)
    }

    /// Close a handle; for a written file, the answer reports what the server could
    /// not finish writing.
    pub fn close(&mut self, handle: Handle) -> Res<()> {
        self.call_status(|p| put_string(p, &handle.0), FXP_CLOSE)
    }

    /// `fsync@openssh.com`: make the file's data durable.
    pub fn fsync(&mut self, handle: &Handle) -> Res<()> {
        self.call_status(
            |p| {
                put_string(p, b"fsync@openssh.com");
                put_string(p, &handle.0);
            },
            FXP_EXTENDED,
        )
    }

    /// `statvfs@openssh.com`: the bytes free for unprivileged users on `path`'s file system.
    pub fn free_bytes(&mut self, path: &str) -> Res<u64> {
        let (kind, body) = self.call(
            |p| {
                put_string(p, b"statvfs@openssh.com");
                put_string(p, path.as_bytes());
            },
            FXP_EXTENDED,
        )?;
        if kind != FXP_EXTENDED_REPLY {
            return Err(status_of(kind, &body).err().unwrap_or_else(|| broken("statvfs answered nothing")));
        }
        // bsize, frsize, blocks, bfree, bavail, …
        let mut r = Reader(&body[5..]);
        let (_bsize, frsize, _blocks, _bfree, bavail) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        Ok(bavail.saturating_mul(frsize))
    }

    /// The entries of folder `path` (without `.` and `..`), with their attributes.
    pub fn readdir(&mut self, path: &str) -> Res<Vec<(String, Attrs)>> {
        let (kind, body) = self.call(|p| put_string(p, path.as_bytes()), FXP_OPENDIR)?;
        let handle = handle_of(kind, &body)?;
        let mut entries = Vec::new();
        let result = loop {
            let (kind, body) = self.call(|p| put_string(p, &handle.0), FXP_READDIR)?;
            if kind != FXP_NAME {
                match status_of(kind, &body) {
                    Err(SftpError::Status(FX_EOF, _)) => break Ok(()),
                    Err(e) => break Err(e),
                    Ok(()) => break Err(broken("READDIR answered OK without names")),
                }
            }
            let mut r = Reader(&body[5..]);
            let count = r.u32()?;
            for _ in 0..count {
                let name = String::from_utf8_lossy(r.string()?).into_owned();
                let _long = r.string()?;
                let a = attrs(&mut r)?;
                if name != "." && name != ".." {
                    entries.push((name, a));
                }
            }
        };
        let closed = self.close(handle);
        result?;
        closed?;
        Ok(entries)
    }

    /// Write everything `src` reads to the open file from offset 0, keeping many WRITEs
    /// in flight; returns the bytes written. `stop` is asked before each read of `src`
    /// and ends the write (as `Interrupted`) once it says so. The first refusal ends
    /// the write once the requests in flight are answered.
    pub fn write_from(
        &mut self,
        handle: &Handle,
        mut src: Source<'_>,
        stop: &dyn Fn() -> bool,
    ) -> std::result::Result<u64, StreamError> {
        let len = self.io_len as usize;
        let mut in_flight: HashSet<u32> = HashSet::new();
        let budget = self.stream_budget();
        let mut offset = 0u64;
        let mut eof = false;
        let mut failed: Option<StreamError> = None;
        let mut packet = Vec::with_capacity(len + 64);
        loop {
            while failed.is_none() && !eof && in_flight.len() < budget {
                if stop() {
                    failed = Some(StreamError::Interrupted);
                    break;
                }
                let id = self.take_id();
                packet.clear();
                packet.extend_from_slice(&[0; 4]);
                packet.push(FXP_WRITE);
                packet.extend_from_slice(&id.to_be_bytes());
                put_string(&mut packet, &handle.0);
                packet.extend_from_slice(&offset.to_be_bytes());
                let at = packet.len();
                packet.extend_from_slice(&[0; 4]);
                // Bytes in memory go out as they are, after the header; a reader's are
                // read into the packet.
                let (n, data) = match &mut src {
                    Source::Bytes(rest) => {
                        let (now, later) = rest.split_at(rest.len().min(len));
                        *rest = later;
                        (now.len(), Some(now))
                    }
                    Source::Read(r) => {
                        packet.resize(at + 4 + len, 0);
                        match crate::hash::read_full(*r, &mut packet[at + 4..]) {
                            Ok(n) => {
                                packet.truncate(at + 4 + n);
                                (n, None)
                            }
                            Err(e) => {
                                failed = Some(StreamError::Local(e));
                                break;
                            }
                        }
                    }
                };
                if n == 0 {
                    eof = true;
                    break;
                }
                eof = n < len;
                packet[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                let total = (at + n) as u32;
                packet[..4].copy_from_slice(&total.to_be_bytes());
                self.send(&packet)?;
                if let Some(data) = data {
                    self.send(data)?;
                }
                in_flight.insert(id);
                offset += n as u64;
            }
            if in_flight.is_empty() {
                break;
            }
            let (kind, body) = self.recv()?;
            let id = Reader(&body[1..]).u32()?;
            if !in_flight.remove(&id) {
                return Err(unknown_request(id).into());
            }
            if let Err(e) = status_of(kind, &body)
                && failed.is_none()
            {
                failed = Some(e.into());
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(offset),
        }
    }

    /// Read the open file from `start` into `out`, keeping many READs in flight, until
    /// it ends or `size` bytes arrived; returns the bytes written to `out`.
    pub fn read_to(
        &mut self,
        handle: &Handle,
        start: u64,
        size: Option<u64>,
        out: &mut dyn Write,
    ) -> std::result::Result<u64, StreamError> {
        let len = self.io_len;
        let budget = self.stream_budget();
        let limit = size.unwrap_or(u64::MAX);
        // Request id -> (offset from start, length).
        let mut in_flight: HashMap<u32, (u64, u64)> = HashMap::new();
        // Data that arrived ahead of what was written, by offset.
        let mut ahead: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        // Ranges to ask for again (after short reads), before new ones.
        let mut gaps: VecDeque<(u64, u64)> = VecDeque::new();
        let mut asked = 0u64;
        let mut written = 0u64;
        // Where the file ends, once a read found its end.
        let mut end = limit;
        let mut failed: Option<StreamError> = None;
        loop {
            while failed.is_none() && in_flight.len() < budget {
                let (offset, n) = match gaps.pop_front() {
                    Some(g) => g,
                    None if asked < end => {
                        let n = (end - asked).min(len);
                        asked += n;
                        (asked - n, n)
                    }
                    None => break,
                };
                if offset >= end {
                    continue;
                }
                let id = self.take_id();
                let mut p = vec![FXP_READ];
                p.extend_from_slice(&id.to_be_bytes());
                put_string(&mut p, &handle.0);
                p.extend_from_slice(&(start + offset).to_be_bytes());
                p.extend_from_slice(&(n as u32).to_be_bytes());
                self.send(&frame(p))?;
                in_flight.insert(id, (offset, n));
            }
            if in_flight.is_empty() {
                break;
            }
            let (kind, body) = self.recv()?;
            let mut r = Reader(&body[1..]);
            let id = r.u32()?;
            let (offset, n) = in_flight.remove(&id).ok_or_else(|| unknown_request(id))?;
            match kind {
                FXP_DATA => {
                    let data = r.string()?;
                    let got = (data.len() as u64).min(n);
                    if got == 0 {
                        end = end.min(offset);
                    } else {
                        if got < n {
                            gaps.push_back((offset + got, n - got));
                        }
                        ahead.insert(offset, data[..got as usize].to_vec());
                    }
                }
                _ => match status_of(kind, &body) {
                    Err(SftpError::Status(FX_EOF, _)) => end = end.min(offset),
                    Err(e) => {
                        if failed.is_none() {
                            failed = Some(e.into());
                        }
                    }
                    Ok(()) => {
                        if failed.is_none() {
                            failed = Some(broken("READ answered OK without data").into());
                        }
                    }
                },
            }
            while let Some(bytes) = ahead.remove(&written) {
                if failed.is_none()
                    && let Err(e) = out.write_all(&bytes)
                {
                    failed = Some(StreamError::Local(e));
                }
                written += bytes.len() as u64;
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written.min(end)),
        }
    }

    /// Read the first `size` bytes of each file in `files` (path, size), calling `done`
    /// with each file's index and outcome as it completes. An error means the channel
    /// failed; the files not yet reported did not complete.
    pub fn read_files(
        &mut self,
        files: &[(String, u64, u64)],
        done: &mut dyn FnMut(usize, Outcome),
    ) -> Res<()> {
        let io_len = self.io_len;
        let mut state: Vec<FileState> = files
            .iter()
            .map(|(_, _, len)| FileState {
                handle: None,
                data: Vec::with_capacity(*len as usize),
                asked: 0,
                reads: 0,
                ended: false,
                failed: None,
            })
            .collect();
        let mut queue: VecDeque<Req> = VecDeque::new();
        let mut next_open = 0;
        let mut in_flight: HashMap<u32, Req> = HashMap::new();
        let mut in_flight_bytes: u64 = 0;
        let mut remaining = files.len();
        // What an answer to a request may bring, for the in-flight budget.
        let cost = |r: &Req| match r {
            Req::Read { len, .. } => *len + 64,
            _ => 300,
        };
        while remaining > 0 {
            let mut out = Vec::new();
            loop {
                if in_flight.len() >= IN_FLIGHT_REQUESTS {
                    break;
                }
                let Some(req) = next_request(&mut queue, &mut next_open, files.len(), Req::Open) else {
                    break;
                };
                let c = cost(&req);
                if in_flight_bytes + c > IN_FLIGHT_BYTES && !in_flight.is_empty() {
                    queue.push_front(req);
                    break;
                }
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                out.push(self.request(id, &req, files, &state));
                in_flight_bytes += c;
                in_flight.insert(id, req);
            }
            if !out.is_empty() {
                self.send(&out.concat())?;
            }
            let (kind, body) = self.recv()?;
            let mut r = Reader(&body[1..]);
            let id = r.u32()?;
            let req = in_flight.remove(&id).ok_or_else(|| unknown_request(id))?;
            in_flight_bytes -= cost(&req);
            match req {
                Req::Open(f) => match kind {
                    FXP_HANDLE => {
                        state[f].handle = Some(r.string()?.to_vec());
                        queue_reads(&mut state[f], f, files[f].2, io_len, &mut queue);
                    }
                    FXP_STATUS => {
                        let e = status_of(kind, &body).err().unwrap_or_else(|| broken("OPEN answered OK"));
                        state[f].failed = Some(match e {
                            SftpError::Status(FX_NO_SUCH_FILE, _) => Outcome::Missing,
                            e => Outcome::Refused(e.to_string()),
                        });
                        remaining -= 1;
                        done(f, state[f].failed.take().expect("just set"));
                    }
                    k => return Err(broken(format!("the server answered OPEN with packet type {k}"))),
                },
                Req::Read { file: f, offset, len } => {
                    let s = &mut state[f];
                    s.reads -= 1;
                    match kind {
                        // Data that does not continue what arrived (after a short read,
                        // or from a server answering out of order) is dropped and asked
                        // for again once this file's reads have drained.
                        FXP_DATA if offset == s.data.len() as u64 => {
                            let data = r.string()?;
                            let keep = (data.len() as u64).min(len) as usize;
                            s.data.extend_from_slice(&data[..keep]);
                        }
                        FXP_DATA => {}
                        FXP_STATUS => {
                            s.ended = true;
                            match status_of(kind, &body) {
                                Err(SftpError::Status(FX_EOF, _)) => {}
                                Err(e) => s.failed = Some(Outcome::Refused(e.to_string())),
                                Ok(()) => s.failed = Some(Outcome::Refused("READ answered OK".into())),
                            }
                        }
                        k => return Err(broken(format!("the server answered READ with packet type {k}"))),
                    }
                    if s.reads == 0 {
                        if !s.ended && (s.data.len() as u64) < files[f].2 {
                            s.asked = s.data.len() as u64;
                            queue_reads(s, f, files[f].2, io_len, &mut queue);
                        } else {
                            queue.push_front(Req::Close(f));
                        }
                    }
                }
                Req::Close(f) => {
                    // The answer to CLOSE does not change what was read.
                    remaining -= 1;
                    let s = &mut state[f];
                    let outcome =
                        s.failed.take().unwrap_or_else(|| Outcome::Data(std::mem::take(&mut s.data)));
                    done(f, outcome);
                }
            }
        }
        Ok(())
    }

    /// Write each file's bytes to its temp path on the server, then rename it to its
    /// destination, keeping many requests in flight. `done` gets each file's index and
    /// whether all of that succeeded; a file that failed may have left its temp behind.
    /// An error means the channel failed, or Ctrl-C stopped the batch once the requests
    /// in flight were answered; files not reported did not complete.
    pub fn write_files(
        &mut self,
        files: &[(String, String, Vec<u8>)],
        done: &mut dyn FnMut(usize, bool),
    ) -> Res<()> {
        let io_len = self.io_len;
        enum W {
            Open(usize),
            Write(usize, usize),
            Close(usize),
            Rename(usize),
        }
        let mut handles: Vec<Option<Vec<u8>>> = vec![None; files.len()];
        let mut writes_left = vec![0usize; files.len()];
        let mut ok = vec![true; files.len()];
        let mut queue: VecDeque<W> = VecDeque::new();
        let mut next_open = 0;
        let mut in_flight: HashMap<u32, (W, u64)> = HashMap::new();
        let mut in_flight_bytes = 0u64;
        let mut remaining = files.len();
        while remaining > 0 {
            // After Ctrl-C nothing more is sent, and the batch ends once every answer is
            // in: then no OPEN of ours can create a temp after the temps are removed.
            let stopping = crate::interrupt::signal().is_some();
            if stopping && in_flight.is_empty() {
                return Err(SftpError::Broken("interrupted".into()));
            }
            let mut out = Vec::new();
            while !stopping && in_flight.len() < IN_FLIGHT_REQUESTS {
                let Some(w) = next_request(&mut queue, &mut next_open, files.len(), W::Open) else {
                    break;
                };
                let id = self.next_id;
                let mut p = Vec::new();
                let cost = match &w {
                    W::Open(f) => {
                        p.push(FXP_OPEN);
                        p.extend_from_slice(&id.to_be_bytes());
                        put_string(&mut p, files[*f].0.as_bytes());
                        p.extend_from_slice(&(FXF_WRITE | FXF_CREAT | FXF_EXCL).to_be_bytes());
                        p.extend_from_slice(&ATTR_PERMISSIONS.to_be_bytes());
                        p.extend_from_slice(&0o644u32.to_be_bytes());
                        300
                    }
                    W::Write(f, chunk) => {
                        let start = chunk * io_len as usize;
                        let data = &files[*f].2[start..(start + io_len as usize).min(files[*f].2.len())];
                        p.push(FXP_WRITE);
                        p.extend_from_slice(&id.to_be_bytes());
                        put_string(&mut p, handles[*f].as_deref().unwrap_or_default());
                        p.extend_from_slice(&(start as u64).to_be_bytes());
                        put_string(&mut p, data);
                        data.len() as u64 + 64
                    }
                    W::Close(f) => {
                        p.push(FXP_CLOSE);
                        p.extend_from_slice(&id.to_be_bytes());
                        put_string(&mut p, handles[*f].as_deref().unwrap_or_default());
                        300
                    }
                    W::Rename(f) => {
                        p.push(FXP_RENAME);
                        p.extend_from_slice(&id.to_be_bytes());
                        put_string(&mut p, files[*f].0.as_bytes());
                        put_string(&mut p, files[*f].1.as_bytes());
                        300
                    }
                };
                if in_flight_bytes + cost > IN_FLIGHT_BYTES && !in_flight.is_empty() {
                    queue.push_front(w);
                    break;
                }
                self.next_id = self.next_id.wrapping_add(1);
                out.push(frame(p));
                in_flight_bytes += cost;
                in_flight.insert(id, (w, cost));
            }
            if !out.is_empty() {
                self.send(&out.concat())?;
            }
            let (kind, body) = self.recv()?;
            let mut r = Reader(&body[1..]);
            let id = r.u32()?;
            let (w, cost) = in_flight.remove(&id).ok_or_else(|| unknown_request(id))?;
            in_flight_bytes -= cost;
            // Whether the server said OK; any other status is a refusal of this file's.
            let status_ok = |kind: u8| match status_of(kind, &body) {
                Ok(()) => Ok(true),
                Err(SftpError::Status(..)) => Ok(false),
                Err(e) => Err(e),
            };
            match w {
                W::Open(f) => {
                    if kind == FXP_HANDLE {
                        handles[f] = Some(r.string()?.to_vec());
                        let chunks = files[f].2.len().div_ceil(io_len as usize);
                        writes_left[f] = chunks;
                        if chunks == 0 {
                            queue.push_front(W::Close(f));
                        }
                        for c in (0..chunks).rev() {
                            queue.push_front(W::Write(f, c));
                        }
                    } else {
                        status_ok(kind)?;
                        remaining -= 1;
                        done(f, false);
                    }
                }
                W::Write(f, _) => {
                    ok[f] &= status_ok(kind)?;
                    writes_left[f] -= 1;
                    if writes_left[f] == 0 {
                        queue.push_front(W::Close(f));
                    }
                }
                W::Close(f) => {
                    // Closing reports what the server could not finish writing.
                    ok[f] &= status_ok(kind)?;
                    if ok[f] {
                        queue.push_front(W::Rename(f));
                    } else {
                        remaining -= 1;
                        done(f, false);
                    }
                }
                W::Rename(f) => {
                    let renamed = status_ok(kind)?;
                    remaining -= 1;
                    done(f, renamed);
                }
            }
        }
        Ok(())
    }

    fn request(&self, id: u32, req: &Req, files: &[(String, u64, u64)], state: &[FileState]) -> Vec<u8> {
        let mut p = Vec::new();
        match req {
            Req::Open(f) => {
                p.push(FXP_OPEN);
                p.extend_from_slice(&id.to_be_bytes());
                put_string(&mut p, files[*f].0.as_bytes());
                p.extend_from_slice(&FXF_READ.to_be_bytes());
                p.extend_from_slice(&0u32.to_be_bytes()); // no attributes
            }
            Req::Read { file, offset, len } => {
                p.push(FXP_READ);
                p.extend_from_slice(&id.to_be_bytes());
                put_string(&mut p, state[*file].handle.as_deref().unwrap_or_default());
                // Offsets within a read count from its start in the file.
                p.extend_from_slice(&(files[*file].1 + offset).to_be_bytes());
                p.extend_from_slice(&(*len as u32).to_be_bytes());
            }
            Req::Close(f) => {
                p.push(FXP_CLOSE);
                p.extend_from_slice(&id.to_be_bytes());
                put_string(&mut p, state[*f].handle.as_deref().unwrap_or_default());
            }
        }
        frame(p)
    }

    /// Write a request out. Never `flush`: on a libssh2 channel that discards the
    /// answers waiting to be read.
    fn send(&mut self, bytes: &[u8]) -> Res<()> {
        self.stream.write_all(bytes).map_err(lost)
    }

    /// One packet: its type, and its bytes (the type byte first).
    fn recv(&mut self) -> Res<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).map_err(lost)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(5..=MAX_PACKET).contains(&len) {
            return Err(broken(format!("the server sent an SFTP packet of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).map_err(lost)?;
        Ok((body[0], body))
    }
}

/// The stream failed: the connection is gone.
fn lost(e: std::io::Error) -> SftpError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::BrokenPipe => broken("the connection closed"),
        _ => broken(e),
    }
}

/// Ok for a status answer of FX_OK; the status as an error otherwise.
fn status_of(kind: u8, body: &[u8]) -> Res<()> {
    if kind != FXP_STATUS {
        return Err(broken(format!("the server answered with packet type {kind} where a status was due")));
    }
    let mut r = Reader(&body[5..]);
    let code = r.u32()?;
    if code == FX_OK {
        return Ok(());
    }
    let message = r.string().map(|m| String::from_utf8_lossy(m).into_owned()).unwrap_or_default();
    Err(SftpError::Status(code, message))
}

fn handle_of(kind: u8, body: &[u8]) -> Res<Handle> {
    match kind {
        FXP_HANDLE => Ok(Handle(Reader(&body[5..]).string()?.to_vec())),
        _ => Err(status_of(kind, body).err().unwrap_or_else(|| broken("OPEN answered OK without a handle"))),
    }
}

fn attrs(r: &mut Reader) -> Res<Attrs> {
    let flags = r.u32()?;
    let mut a = Attrs::default();
    if flags & ATTR_SIZE != 0 {
        a.size = Some(r.u64()?);
    }
    if flags & ATTR_UIDGID != 0 {
        r.u32()?;
        r.u32()?;
    }
    if flags & ATTR_PERMISSIONS != 0 {
        a.permissions = Some(r.u32()?);
    }
    if flags & ATTR_ACMODTIME != 0 {
        r.u32()?;
        a.mtime = Some(u64::from(r.u32()?));
    }
    if flags & ATTR_EXTENDED != 0 {
        for _ in 0..r.u32()? {
            r.string()?;
            r.string()?;
        }
    }
    Ok(a)
}

/// Queue the READs that cover the rest of a file, from what was asked so far.
fn queue_reads(s: &mut FileState, f: usize, size: u64, io_len: u64, queue: &mut VecDeque<Req>) {
    let mut reqs = Vec::new();
    while s.asked < size {
        let len = (size - s.asked).min(io_len);
        reqs.push(Req::Read { file: f, offset: s.asked, len });
        s.asked += len;
        s.reads += 1;
    }
    if reqs.is_empty() {
        queue.push_front(Req::Close(f));
    }
    // Reads of a file already open go before new opens.
    for r in reqs.into_iter().rev() {
        queue.push_front(r);
    }
}

fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut p = Vec::with_capacity(body.len() + 4);
    p.extend_from_slice(&(body.len() as u32).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

/// The next request to send: one queued (a file's next step), else the opening of the
/// next of `files` files not yet opened, else none.
fn next_request<R>(
    queue: &mut VecDeque<R>,
    next_open: &mut usize,
    files: usize,
    open: impl FnOnce(usize) -> R,
) -> Option<R> {
    queue.pop_front().or_else(|| {
        (*next_open < files).then(|| {
            *next_open += 1;
            open(*next_open - 1)
        })
    })
}

fn put_string(p: &mut Vec<u8>, s: &[u8]) {
    p.extend_from_slice(&(s.len() as u32).to_be_bytes());
    p.extend_from_slice(s);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Res<u32> {
        let (head, rest) =
            self.0.split_first_chunk::<4>().ok_or_else(|| broken("a truncated SFTP packet"))?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn u64(&mut self) -> Res<u64> {
        let (head, rest) =
            self.0.split_first_chunk::<8>().ok_or_else(|| broken("a truncated SFTP packet"))?;
        self.0 = rest;
        Ok(u64::from_be_bytes(*head))
    }

    fn string(&mut self) -> Res<&'a [u8]> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return Err(broken("a truncated SFTP packet"));
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(s)
    }
}
