//! Where the static files of `www/` come from: built into the binary, or a folder (WWW_DIR).
//!
//! The binary carries `www/` as it was when it was compiled, `pkg/` included when
//! `scripts/build-widget` ran first (the scripts build the widget before the server), so it
//! serves the widget from any working directory, with nothing beside it. WWW_DIR, when
//! set, wins: the files are then read from that folder on every request, so a rebuilt
//! widget or an edited page shows without rebuilding the server (development, tests).
use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    time::SystemTime,
};

use poem::{
    endpoint::StaticFilesEndpoint,
    http::{header, Method, StatusCode},
    Endpoint, EndpointExt, IntoResponse, Request, Response, Result,
};
use rust_embed::RustEmbed;

/// `www/` at build time. The half-written builds of `scripts/build-widget` are left out.
#[derive(RustEmbed)]
#[folder = "../www"]
#[exclude = "pkg.new/*"]
#[exclude = "pkg.old/*"]
struct Embedded;

/// The folder the files were built in from (for messages).
fn embedded_from() -> PathBuf {
    let backend = Path::new(env!("CARGO_MANIFEST_DIR"));
    backend.parent().unwrap_or(backend).join("www")
}

/// The source of the static files.
#[derive(Debug, Clone)]
pub enum Www {
    /// Built into the binary.
    Embedded,
    /// Read from this folder (absolute) on every request.
    Dir(PathBuf),
}

impl Www {
    /// The folder when one is given (relative to the working directory), else the files
    /// built into the binary.
    pub fn new(dir: Option<&Path>) -> Www {
        match dir {
            Some(dir) => Www::Dir(std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())),
            None => Www::Embedded,
        }
    }

    /// The bytes of `path` (relative, `/`-separated, e.g. `pkg/manifest.json`).
    pub fn read(&self, path: &str) -> Option<Cow<'static, [u8]>> {
        match self {
            Www::Embedded => Embedded::get(path).map(|f| f.data),
            Www::Dir(dir) => std::fs::read(dir.join(path)).ok().map(Cow::Owned),
        }
    }

    /// When `path` last changed: its modification time in a folder, a constant for the
    /// files built in (they never change); None when it does not exist.
    pub fn stamp(&self, path: &str) -> Option<SystemTime> {
        match self {
            Www::Embedded => Embedded::get(path).map(|_| SystemTime::UNIX_EPOCH),
            Www::Dir(dir) => std::fs::metadata(dir.join(path))
                .and_then(|m| m.modified())
                .ok(),
        }
    }

    /// Where files are looked for, for messages that must say which folder was searched.
    pub fn describe(&self) -> String {
        match self {
            Www::Embedded => format!(
                "the files built into this binary from {} (set WWW_DIR to read a folder instead)",
                embedded_from().display()
            ),
            Www::Dir(dir) => format!("{} (WWW_DIR)", dir.display()),
        }
    }

    /// Serves the files under `sub` (`""` for all of them, `"pkg"`, `"demo"`) with an ETag;
    /// a folder as poem's static files do (at the root, `index.html` and redirects to a
    /// slash too).
    pub fn endpoint(&self, sub: &str) -> poem::endpoint::BoxEndpoint<'static, Response> {
        match self {
            Www::Embedded => EmbeddedFiles {
                prefix: sub.trim_matches('/').to_owned(),
            }
            .boxed(),
            Www::Dir(dir) if sub.is_empty() => StaticFilesEndpoint::new(dir)
                .index_file("index.html")
                .redirect_to_slash_directory()
                .boxed(),
            Www::Dir(dir) => StaticFilesEndpoint::new(dir.join(sub)).boxed(),
        }
    }
}

/// The files built in under one prefix.
struct EmbeddedFiles {
    prefix: String,
}

impl Endpoint for EmbeddedFiles {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(StatusCode::METHOD_NOT_ALLOWED.into());
        }
        let rel = req.uri().path().trim_start_matches('/');
        let path = match (self.prefix.as_str(), rel) {
            (_, "") => format!("{}/index.html", self.prefix),
            ("", rel) => rel.to_owned(),
            (prefix, rel) => format!("{prefix}/{rel}"),
        };
        let Some(file) = Embedded::get(path.trim_start_matches('/')) else {
            return Err(StatusCode::NOT_FOUND.into());
        };
        let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        if fresh {
            return Ok(StatusCode::NOT_MODIFIED
                .with_header(header::ETAG, etag)
                .into_response());
        }
        let mime = file.metadata.mimetype();
        // As poem's static files say of a folder's text files.
        let mime = if mime.starts_with("text/")
            || mime == "application/javascript"
            || mime == "application/json"
        {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_owned()
        };
        let body: Vec<u8> = if req.method() == Method::HEAD {
            Vec::new()
        } else {
            file.data.into_owned()
        };
        Ok(body
            .with_content_type(mime)
            .with_header(header::ETAG, etag)
            .into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_files_are_built_in() {
        let www = Www::Embedded;
        for path in [
            "widget.js",
            "checkout.html",
            "checkout.css",
            "demo/shop.css",
        ] {
            assert!(www.read(path).is_some(), "{path}");
            assert!(www.stamp(path).is_some(), "{path}");
        }
        assert!(www.read("nothing.js").is_none());
    }

    #[test]
    fn a_relative_folder_is_named_absolutely() {
        let Www::Dir(dir) = Www::new(Some(Path::new("www"))) else {
            panic!("a folder was given");
        };
        assert!(dir.is_absolute());
        assert!(Www::new(Some(Path::new("x")))
            .describe()
            .ends_with("x (WWW_DIR)"));
    }
}
