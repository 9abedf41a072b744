//! Writing a batch of new objects as loose objects, with one deflate stream
//! for all of them.
//!
//! gix starts a new deflate stream for every object it writes. Setting one
//! up allocates and zeroes a few hundred kilobytes, which costs more than
//! compressing a ledger's small objects: a transaction writes several, a
//! dispatched role a score. So a transaction builds its objects in memory
//! (`gix::Repository::with_object_memory`) and hands them here, where they
//! are written as git writes loose objects (a temporary file, mode 0444,
//! renamed into its fan-out directory) by one reused compressor. An
//! object already there as a loose object is not written again.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::zlib::{Compression, Status};

use crate::error::{Error, Result};

/// The one compressor, kept for the process (a runner's runs each have a
/// thread of their own).
static DEFLATE: Mutex<Option<Compress>> = Mutex::new(None);

/// Write the objects of `batch` into `repo`'s object directory; `what`
/// names the write in an error.
pub(crate) fn persist(repo: &gix::Repository, batch: &gix::odb::memory::Storage, what: &str) -> Result<()> {
    let dir = repo.objects.store_ref().path();
    let mut compressed = Vec::new();
    for (id, (kind, data)) in batch.iter() {
        let hex = id.to_hex().to_string();
        // Already here, loose: nothing to write. (A packed copy is not
        // looked for: finding it costs more than writing a duplicate.)
        if dir.join(&hex[..2]).join(&hex[2..]).exists() {
            continue;
        }
        compressed.clear();
        deflate(&gix::objs::encode::loose_header(*kind, data.len() as u64), data, &mut compressed)
            .map_err(|e| Error::io(format!("{what}: compressing {id}"), e))?;
        write_object(dir, &hex, &compressed).map_err(|e| Error::io(what.to_string(), e))?;
    }
    Ok(())
}

/// `header` then `data` as one zlib stream, at git's level for loose objects.
fn deflate(header: &[u8], data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    {
        let mut slot = DEFLATE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let compress = slot.get_or_insert_with(|| Compress::new(Compression::BEST_SPEED));
        compress.reset();
        let mut chunk = [0u8; 16 * 1024];
        for (input, flush) in [(header, FlushCompress::None), (data, FlushCompress::Finish)] {
            let mut consumed = 0;
            loop {
                let (before_in, before_out) = (compress.total_in(), compress.total_out());
                let status = compress
                    .compress(&input[consumed..], &mut chunk, flush)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                consumed += (compress.total_in() - before_in) as usize;
                let produced = (compress.total_out() - before_out) as usize;
                out.extend_from_slice(&chunk[..produced]);
                let done = match flush {
                    FlushCompress::Finish => status == Status::StreamEnd,
                    // All of it taken, and the output had room to spare: nothing is held back.
                    _ => consumed == input.len() && produced < chunk.len(),
                };
                if done {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// One loose object file, made whole under a temporary name and renamed
/// into place, read-only as git makes them.
fn write_object(dir: &Path, hex: &str, compressed: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut file = tempfile::Builder::new().permissions(std::fs::Permissions::from_mode(0o444)).tempfile_in(dir)?;
    file.write_all(compressed)?;
    let fanout = dir.join(&hex[..2]);
    let path = fanout.join(&hex[2..]);
    // The fan-out directory is made only when the rename says it is missing.
    let file = match file.persist(&path) {
        Ok(_) => return Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => e.file,
        Err(e) => return Err(e.error),
    };
    match std::fs::create_dir(&fanout) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    file.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_written_here_are_what_git_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("git").args(["init", "-q"]).current_dir(tmp.path()).status().unwrap();
        assert!(status.success());
        let mut repo = gix::open(tmp.path()).unwrap().with_object_memory();
        // Small, empty, and larger than the compressor's output chunk, incompressible.
        let mut noise = 0x2545_f491_4f6c_dd1du64;
        let big: Vec<u8> = (0..100_000)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        let blobs = [b"one".to_vec(), Vec::new(), big];
        let ids: Vec<_> = blobs.iter().map(|b| repo.write_blob(b).unwrap().detach()).collect();
        let batch = repo.objects.take_object_memory().unwrap();
        persist(&repo, &batch, "writing").unwrap();
        // Written again: nothing happens, nothing fails.
        persist(&repo, &batch, "writing").unwrap();
        for (id, want) in ids.iter().zip(blobs) {
            let out = std::process::Command::new("git")
                .args(["cat-file", "blob", &id.to_string()])
                .current_dir(tmp.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout, want);
        }
        let fsck =
            std::process::Command::new("git").args(["fsck", "--strict"]).current_dir(tmp.path()).output().unwrap();
        assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    }
}
