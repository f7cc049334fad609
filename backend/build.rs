//! Builds the server again whenever www/ changes: the files of www/ are built into the
//! binary, and a new widget build adds files (new content-hashed names) that no existing
//! source file names.
fn main() {
    println!("cargo:rerun-if-changed=../www");
}
