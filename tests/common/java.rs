//! The Java side of the compatibility tests: `tests/java/` built by
//! `scripts/test` (Maven) into `target/java/` — the scenarios' jar and, in
//! `lib/`, Apache Kafka's jars. Missing or stale builds and a missing JDK
//! fail with how to get them, never a skip.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How to get a JDK when `java` is missing.
pub const JAVA_HINT: &str =
    "install a JDK 17 with `apt-get install openjdk-17-jdk-headless maven` (or run scripts/test)";

/// How to build the Java side when it is missing or stale.
const BUILD_HINT: &str =
    "run scripts/test, or build them with `mvn -q -f tests/java/pom.xml package`";

/// Where `mvn -f tests/java/pom.xml package` leaves its output.
pub fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/java")
}

/// The Maven-copied dependency jars: `target/java/lib/`.
pub fn lib_dir() -> PathBuf {
    target().join("lib")
}

/// `java` on PATH, or a panic with [`JAVA_HINT`].
pub fn java() -> PathBuf {
    super::require_tool("java", JAVA_HINT)
}

/// The version in the name of the jar `<prefix><version>.jar` in
/// [`lib_dir`], if there is one.
pub fn jar_version(prefix: &str) -> Option<String> {
    std::fs::read_dir(lib_dir())
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".jar"))
                .map(str::to_string)
        })
}

/// Newest modification time under `path` (a file or a directory tree).
fn newest_mtime(path: &Path) -> SystemTime {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut newest = meta.modified().unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            newest = newest.max(newest_mtime(&entry.unwrap().path()));
        }
    }
    newest
}

/// The `-cp` argument for the built scenarios and Kafka's jars; panics with
/// how to build them when the scenarios' jar or a `<prefix>*.jar` of
/// `needed` is missing, or the jar is older than its sources.
pub fn classpath(needed: &[&str]) -> String {
    let jar = target().join("sediment-compat-java.jar");
    let lib = lib_dir();
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|prefix| jar_version(prefix).is_none())
        .collect();
    assert!(
        jar.is_file() && missing.is_empty(),
        "{} or {}/{{{}}}*.jar is missing: {BUILD_HINT}",
        jar.display(),
        lib.display(),
        missing.join(",")
    );
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java");
    let built = std::fs::metadata(&jar).unwrap().modified().unwrap();
    assert!(
        newest_mtime(&sources) <= built,
        "{} is older than tests/java/: {BUILD_HINT}",
        jar.display()
    );
    format!("{}:{}/*", jar.display(), lib.display())
}
