//! Base64 (RFC 4648, standard alphabet) for the few places that write it: known_hosts
//! lines and SSH fingerprints, and HTTP Basic credentials.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in base64, padded with `=` to a multiple of 4 characters when `pad` (OpenSSH
/// fingerprints leave the padding off).
pub fn encode(bytes: &[u8], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if pad {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_unpadded() {
        assert_eq!(encode(b"", true), "");
        assert_eq!(encode(b"f", true), "Zg==");
        assert_eq!(encode(b"fo", true), "Zm8=");
        assert_eq!(encode(b"foo", true), "Zm9v");
        assert_eq!(encode(b"foob", false), "Zm9vYg");
        assert_eq!(encode(b"fo", false), "Zm8");
        assert_eq!(encode(b"Aladdin:open sesame", true), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(encode(&[0xfb, 0xff, 0xbf], true), "+/+/");
    }
}
