// `sqlx::migrate!` embeds the migrations at compile time, but Cargo only knows to rebuild when
// told: without this, a new migration file is missing from an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
