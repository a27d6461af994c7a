//! Passwords written into URLs (`scheme://user:password@host`), hidden before a URL is
//! shown in a message or a listing, or stored in an experiment record.

/// What a password is replaced by in messages and listings (`user:***@host`).
pub const STARS: &str = "***";

/// `url` with the password of its authority (`user:secret@host`) replaced by `***`; a URL
/// without a password is returned as it is. The authority ends at the first `/` after `://`.
pub fn url(url: &str) -> String {
    one_url(url, false)
}

/// Like [`url`], but any user information is shown as `user:***`, with a password or
/// without, so a message does not tell whether the URI carried one.
pub fn url_credentials(url: &str) -> String {
    one_url(url, true)
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by
/// `marker`. In free text (a requirements file, a command-line argument) an authority also
/// ends at `?`, `#`, a quote, an angle bracket or whitespace.
pub fn urls_in(text: &str, marker: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| "/?#\"'`<>".contains(c) || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        out.push_str(&hide_password(authority, marker, false).unwrap_or_else(|| authority.to_string()));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn one_url(url: &str, mark_any_user: bool) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let end = rest.find('/').unwrap_or(rest.len());
    match hide_password(&rest[..end], STARS, mark_any_user) {
        Some(authority) => format!("{scheme}://{authority}{}", &rest[end..]),
        None => url.to_string(),
    }
}

/// `user:password@host` → `user:MARKER@host`; None when there is no password to hide
/// (unless `mark_any_user`, which marks `user@host` too). The host is what follows the
/// last `@`, the user what precedes the first `:`.
fn hide_password(authority: &str, marker: &str, mark_any_user: bool) -> Option<String> {
    let (userinfo, host) = authority.rsplit_once('@')?;
    let user = match userinfo.split_once(':') {
        Some((user, _)) => user,
        None if mark_any_user => userinfo,
        None => return None,
    };
    Some(format!("{user}:{marker}@{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_loses_its_password_only() {
        assert_eq!(url("sftp://bob:hunter2@host:2222/srv/data"), "sftp://bob:***@host:2222/srv/data");
        assert_eq!(url("sftp://bob@host/srv"), "sftp://bob@host/srv");
        assert_eq!(url("sftp://host/srv"), "sftp://host/srv");
        assert_eq!(url("/srv/data"), "/srv/data");
        // The password may hold `@` and `:`; the host is what follows the last `@`.
        assert_eq!(url("ssh://u:p@ss:w@h/x"), "ssh://u:***@h/x");
        // An `@` in the path is no user information.
        assert_eq!(url("sftp://h/a@b:c"), "sftp://h/a@b:c");
    }

    #[test]
    fn credentials_are_marked_even_without_a_password() {
        assert_eq!(url_credentials("http://ann:secret@h:5000/x"), "http://ann:***@h:5000/x");
        assert_eq!(url_credentials("http://ann@h:5000"), "http://ann:***@h:5000");
        assert_eq!(url_credentials("http://h:5000/x"), "http://h:5000/x");
        assert_eq!(url_credentials("databricks"), "databricks");
    }

    #[test]
    fn every_url_in_a_text_loses_its_password() {
        let text = "--index-url https://ci:s3cr3t@pypi.example.com/simple\nsee \"postgres://app:pw@db:5432\" \
                    and ftp://anon@h";
        assert_eq!(
            urls_in(text, "[redacted]"),
            "--index-url https://ci:[redacted]@pypi.example.com/simple\nsee \"postgres://app:[redacted]@db:5432\" \
             and ftp://anon@h"
        );
        // The authority ends at whitespace: a later `@` is not the host's.
        assert_eq!(urls_in("http://u:p x@y", "#"), "http://u:p x@y");
        assert_eq!(urls_in("http://host:8080/a", "#"), "http://host:8080/a");
        assert_eq!(urls_in("a://", "#"), "a://");
        assert_eq!(urls_in("", "#"), "");
    }
}
