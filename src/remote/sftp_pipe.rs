//! Pipelined SFTP reads of many small files over one SSH channel.
//!
//! libssh2's SFTP API waits for each answer before the next request, so a small object
//! costs three round trips (open, read, close) and the server sits idle in between. This
//! speaks SFTP version 3 (draft-ietf-secsh-filexfer-02) itself on a second channel of
//! the same session and keeps many requests in flight, as OpenSSH's own `sftp` client
//! does. Only what transfers of small objects need is here: OPEN, READ, WRITE, CLOSE
//! and RENAME.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

use ssh2::{Channel, Session};

const FXP_INIT: u8 = 1;
const FXP_VERSION: u8 = 2;
const FXP_OPEN: u8 = 3;
const FXP_CLOSE: u8 = 4;
const FXP_READ: u8 = 5;
const FXP_WRITE: u8 = 6;
const FXP_RENAME: u8 = 18;
const FXP_STATUS: u8 = 101;
const FXP_HANDLE: u8 = 102;
const FXP_DATA: u8 = 103;
const FXF_READ: u32 = 1;
const FXF_WRITE: u32 = 2;
const FXF_CREAT: u32 = 8;
const FXF_EXCL: u32 = 0x20;
const ATTR_PERMISSIONS: u32 = 4;
const FX_OK: u32 = 0;
const FX_EOF: u32 = 1;
const FX_NO_SUCH_FILE: u32 = 2;

/// Bytes asked for by one READ (servers answer at least this much; OpenSSH up to 255 KiB).
const READ_LEN: u64 = 32 << 10;
/// Answer bytes in flight at most: below the channel's receive window (2 MiB in
/// libssh2), so the server never blocks on a full window while requests wait to be sent.
const IN_FLIGHT_BYTES: u64 = 1 << 20;
/// Requests in flight at most.
const IN_FLIGHT_REQUESTS: usize = 256;
/// The largest packet accepted from the server.
const MAX_PACKET: usize = 512 << 10;

/// How one file's download ended.
pub enum Outcome {
    /// Its first `size` bytes (fewer when the file is shorter).
    Data(Vec<u8>),
    /// The server has no such file.
    Missing,
    /// The server refused it (status code and message).
    Refused(String),
}

/// An SFTP channel for pipelined reads.
pub struct Pipe {
    channel: Channel,
    next_id: u32,
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

impl Pipe {
    /// Start the `sftp` subsystem on a new channel of `session` and agree on version 3.
    pub fn open(session: &Session) -> Result<Pipe, String> {
        let mut channel = session.channel_session().map_err(|e| e.message().to_string())?;
        channel.subsystem("sftp").map_err(|e| e.message().to_string())?;
        let mut pipe = Pipe { channel, next_id: 1 };
        let mut init = Vec::new();
        init.push(FXP_INIT);
        init.extend_from_slice(&3u32.to_be_bytes());
        pipe.send(&[frame(init)])?;
        let (kind, body) = pipe.recv()?;
        if kind != FXP_VERSION || body.len() < 5 {
            return Err(format!("the server answered the SFTP greeting with packet type {kind}"));
        }
        Ok(pipe)
    }

    /// Read the first `size` bytes of each file in `files` (path, size), calling `done`
    /// with each file's index and outcome as it completes. An error means the channel
    /// failed; the files not yet reported did not complete.
    pub fn read_files(
        &mut self,
        files: &[(String, u64, u64)],
        done: &mut dyn FnMut(usize, Outcome),
    ) -> Result<(), String> {
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
                self.send(&out)?;
            }
            let (kind, body) = self.recv()?;
            let mut r = Reader(&body[1..]);
            let id = r.u32()?;
            let req =
                in_flight.remove(&id).ok_or_else(|| format!("the server answered unknown request {id}"))?;
            in_flight_bytes -= cost(&req);
            match req {
                Req::Open(f) => match kind {
                    FXP_HANDLE => {
                        state[f].handle = Some(r.string()?.to_vec());
                        queue_reads(&mut state[f], f, files[f].2, &mut queue);
                    }
                    FXP_STATUS => {
                        let (code, msg) = (r.u32()?, r.string().unwrap_or_default());
                        state[f].failed = Some(if code == FX_NO_SUCH_FILE {
                            Outcome::Missing
                        } else {
                            Outcome::Refused(format!("{} (SFTP status {code})", String::from_utf8_lossy(msg)))
                        });
                        remaining -= 1;
                        done(f, state[f].failed.take().expect("just set"));
                    }
                    k => return Err(format!("the server answered OPEN with packet type {k}")),
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
                            let (code, msg) = (r.u32()?, r.string().unwrap_or_default());
                            s.ended = true;
                            if code != FX_EOF {
                                s.failed = Some(Outcome::Refused(format!(
                                    "{} (SFTP status {code})",
                                    String::from_utf8_lossy(msg)
                                )));
                            }
                        }
                        k => return Err(format!("the server answered READ with packet type {k}")),
                    }
                    if s.reads == 0 {
                        if !s.ended && (s.data.len() as u64) < files[f].2 {
                            s.asked = s.data.len() as u64;
                            queue_reads(s, f, files[f].2, &mut queue);
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
    ) -> Result<(), String> {
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
                return Err("interrupted".into());
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
                        let start = chunk * READ_LEN as usize;
                        let data = &files[*f].2[start..(start + READ_LEN as usize).min(files[*f].2.len())];
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
                self.send(&out)?;
            }
            let (kind, body) = self.recv()?;
            let mut r = Reader(&body[1..]);
            let id = r.u32()?;
            let (w, cost) =
                in_flight.remove(&id).ok_or_else(|| format!("the server answered unknown request {id}"))?;
            in_flight_bytes -= cost;
            let status_ok = |kind: u8, r: &mut Reader| -> Result<bool, String> {
                match kind {
                    FXP_STATUS => Ok(r.u32()? == FX_OK),
                    k => Err(format!("the server answered with packet type {k}")),
                }
            };
            match w {
                W::Open(f) => {
                    if kind == FXP_HANDLE {
                        handles[f] = Some(r.string()?.to_vec());
                        let chunks = files[f].2.len().div_ceil(READ_LEN as usize);
                        writes_left[f] = chunks;
                        if chunks == 0 {
                            queue.push_front(W::Close(f));
                        }
                        for c in (0..chunks).rev() {
                            queue.push_front(W::Write(f, c));
                        }
                    } else {
                        status_ok(kind, &mut r)?;
                        remaining -= 1;
                        done(f, false);
                    }
                }
                W::Write(f, _) => {
                    ok[f] &= status_ok(kind, &mut r)?;
                    writes_left[f] -= 1;
                    if writes_left[f] == 0 {
                        queue.push_front(W::Close(f));
                    }
                }
                W::Close(f) => {
                    // Closing reports what the server could not finish writing.
                    ok[f] &= status_ok(kind, &mut r)?;
                    if ok[f] {
                        queue.push_front(W::Rename(f));
                    } else {
                        remaining -= 1;
                        done(f, false);
                    }
                }
                W::Rename(f) => {
                    let renamed = status_ok(kind, &mut r)?;
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

    fn send(&mut self, packets: &[Vec<u8>]) -> Result<(), String> {
        let all: Vec<u8> = packets.concat();
        self.channel.write_all(&all).map_err(|e| e.to_string())
    }

    /// One packet: its type, and its bytes (the type byte first).
    fn recv(&mut self) -> Result<(u8, Vec<u8>), String> {
        let mut len = [0u8; 4];
        self.channel.read_exact(&mut len).map_err(|e| e.to_string())?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(format!("the server sent an SFTP packet of {len} bytes"));
        }
        let mut body = vec![0u8; len];
        self.channel.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok((body[0], body))
    }
}

/// Queue the READs that cover the rest of a file, from what was asked so far.
fn queue_reads(s: &mut FileState, f: usize, size: u64, queue: &mut VecDeque<Req>) {
    let mut reqs = Vec::new();
    while s.asked < size {
        let len = (size - s.asked).min(READ_LEN);
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
    fn u32(&mut self) -> Result<u32, String> {
        let (head, rest) = self.0.split_first_chunk::<4>().ok_or("a truncated SFTP packet")?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return Err("a truncated SFTP packet".to_string());
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(s)
    }
}
