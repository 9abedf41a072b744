//! A transaction's new objects, written to disk in one go, before the ref
//! that names them moves.
//!
//! A transaction builds its objects in memory
//! (`gix::Repository::with_object_memory`) and hands them here. Creating a
//! file is the dearest part of writing them: on ext4 allocating an inode
//! costs more than compressing a ledger's small objects, and a transaction
//! writes several (a dispatched role about twenty). So a batch of two or
//! more becomes one pack and its index, two files, written as git writes
//! them (a temporary name in `objects/pack`, mode 0444, the pack renamed
//! into place before its index, so a reader never finds an index without
//! its pack). A single object is written loose, as git writes it. The packs
//! pile up and are rolled up in the background (`maintenance`); where
//! nothing would roll them up, every object is written loose, as git
//! itself writes a commit's.
//!
//! gix starts a new deflate stream for every object it writes. Setting one
//! up allocates and zeroes a few hundred kilobytes, which costs more than
//! compressing a small object, so one compressor serves the process.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use gix::ObjectId;
use gix::objs::Kind;
use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::zlib::{Compression, Status};

use crate::error::{Error, Result};

/// The one compressor, kept for the process (a runner's runs each have a
/// thread of their own).
static DEFLATE: Mutex<Option<Compress>> = Mutex::new(None);

/// Write the objects of `batch` into `repo`'s object directory, as one
/// pack when `pack` (and there are several), else loose; `what` names the
/// write in an error.
pub(crate) fn persist(repo: &gix::Repository, batch: &gix::odb::memory::Storage, pack: bool, what: &str) -> Result<()> {
    let dir = repo.objects.store_ref().path();
    let mut objects: Vec<(&ObjectId, Kind, &[u8])> =
        batch.iter().map(|(id, (kind, data))| (id, *kind, data.as_slice())).collect();
    // By id, as a pack index lists them (and so the same batch is the same pack).
    objects.sort_unstable_by_key(|(id, _, _)| *id);
    if pack && objects.len() > 1 {
        write_pack(dir, repo.object_hash(), &objects)
    } else {
        objects.iter().try_for_each(|(id, kind, data)| write_loose(dir, id, *kind, data))
    }
    .map_err(|e| Error::io(what.to_string(), e))
}

/// One loose object, unless it is there already as one. (A packed copy is
/// not looked for: finding it costs more than writing a duplicate.)
fn write_loose(dir: &Path, id: &ObjectId, kind: Kind, data: &[u8]) -> std::io::Result<()> {
    let hex = id.to_hex().to_string();
    let fanout = dir.join(&hex[..2]);
    let path = fanout.join(&hex[2..]);
    if path.exists() {
        return Ok(());
    }
    let mut compressed = Vec::new();
    deflate(&gix::objs::encode::loose_header(kind, data.len() as u64), data, &mut compressed)?;
    // Made inside its fan-out directory, as git makes its own (`tmp_obj_`,
    // which git's prune removes after two weeks): `git prune-packed`, which
    // every repack runs, removes empty fan-out directories, and cannot
    // while this file is in one. It may still remove the directory before
    // the file is made: then the directory is made again.
    for _ in 0..16 {
        let file = match temporary(&fanout, "tmp_obj_mso_", &compressed) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&fanout) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
                _ => continue,
            },
            other => other?,
        };
        return file.persist(&path).map(|_| ()).map_err(|e| e.error);
    }
    Err(std::io::Error::other(format!("{} kept disappearing", fanout.display())))
}

/// `objects` (sorted by id) as `pack-<checksum>.pack` and its version 2
/// index, every object whole (no deltas).
fn write_pack(dir: &Path, hash: gix::hash::Kind, objects: &[(&ObjectId, Kind, &[u8])]) -> std::io::Result<()> {
    let count = u32::try_from(objects.len()).map_err(|_| std::io::Error::other("too many objects for one pack"))?;
    let mut pack = Vec::with_capacity(objects.iter().map(|(_, _, data)| data.len() / 2 + 16).sum::<usize>() + 32);
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&count.to_be_bytes());
    let mut entries = Vec::with_capacity(objects.len());
    for (_, kind, data) in objects {
        let offset = pack.len();
        entry_header(*kind, data.len() as u64, &mut pack);
        deflate(&[], data, &mut pack)?;
        entries.push((offset as u64, crc32fast::hash(&pack[offset..])));
    }
    let pack_sum = checksum(hash, &pack)?;
    pack.extend_from_slice(pack_sum.as_bytes());

    let mut idx = Vec::with_capacity(8 + 256 * 4 + objects.len() * (hash.len_in_bytes() + 8) + 2 * hash.len_in_bytes());
    idx.extend_from_slice(b"\xfftOc");
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in objects {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut below = 0u32;
    for n in fanout {
        below += n;
        idx.extend_from_slice(&below.to_be_bytes());
    }
    for (id, _, _) in objects {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, crc) in &entries {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    // Offsets past 2 GiB go to a table of 64-bit ones, as git writes them.
    let mut large = Vec::new();
    for (offset, _) in &entries {
        match u32::try_from(*offset) {
            Ok(small) if small < 0x8000_0000 => idx.extend_from_slice(&small.to_be_bytes()),
            _ => {
                idx.extend_from_slice(&(0x8000_0000 | large.len() as u32).to_be_bytes());
                large.push(*offset);
            }
        }
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack_sum.as_bytes());
    let idx_sum = checksum(hash, &idx)?;
    idx.extend_from_slice(idx_sum.as_bytes());

    let packs = dir.join("pack");
    let name = format!("pack-{}", pack_sum.to_hex());
    let prefix = super::maintenance::TMP_PREFIX;
    let pack_file = match temporary(&packs, prefix, &pack) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&packs)?;
            temporary(&packs, prefix, &pack)?
        }
        other => other?,
    };
    let idx_file = temporary(&packs, prefix, &idx)?;
    pack_file.persist(packs.join(format!("{name}.pack"))).map_err(|e| e.error)?;
    idx_file.persist(packs.join(format!("{name}.idx"))).map_err(|e| e.error)?;
    Ok(())
}

/// A pack entry's header: its type, and its size in a little-endian base-128
/// number whose first group has four bits.
fn entry_header(kind: Kind, size: u64, out: &mut Vec<u8>) {
    let code: u8 = match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    };
    let mut byte = (code << 4) | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest != 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
}

fn checksum(hash: gix::hash::Kind, bytes: &[u8]) -> std::io::Result<ObjectId> {
    let mut hasher = gix::hash::hasher(hash);
    hasher.update(bytes);
    hasher.try_finalize().map_err(|e| std::io::Error::other(e.to_string()))
}

/// `bytes` in a new read-only file in `dir`, named `prefix` and random
/// letters, to be renamed into place.
fn temporary(dir: &Path, prefix: &str, bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let mut file =
        tempfile::Builder::new().prefix(prefix).permissions(std::fs::Permissions::from_mode(0o444)).tempfile_in(dir)?;
    file.write_all(bytes)?;
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new("git").args(args).current_dir(dir).output().unwrap()
    }

    /// Files under `objects/pack` and loose objects, by name.
    fn files(objects: &Path) -> (Vec<String>, usize) {
        let packs = std::fs::read_dir(objects.join("pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let loose = std::fs::read_dir(objects)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().len() == 2)
            .map(|e| std::fs::read_dir(e.path()).unwrap().count())
            .sum();
        (packs, loose)
    }

    #[test]
    fn a_batch_is_one_pack_that_git_reads_and_one_object_is_loose() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(git(tmp.path(), &["init", "-q"]).status.success());
        let objects = tmp.path().join(".git/objects");
        // A handle that read the object database before the pack came.
        let before = gix::open(tmp.path()).unwrap();
        assert!(before.find_object(gix::ObjectId::empty_tree(gix::hash::Kind::Sha1)).is_ok());
        let mut repo = gix::open(tmp.path()).unwrap().with_object_memory();
        // Small, empty, larger than the compressor's output chunk and
        // incompressible, and one whose size needs three header bytes.
        let mut noise = 0x2545_f491_4f6c_dd1du64;
        let big: Vec<u8> = (0..100_000)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        let blobs = [b"one".to_vec(), Vec::new(), big, vec![b'a'; 5000]];
        let mut ids: Vec<_> = blobs.iter().map(|b| repo.write_blob(b).unwrap().detach()).collect();
        let tree = gix::objs::Tree {
            entries: vec![gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: "one".into(),
                oid: ids[0],
            }],
        };
        let tree = repo.write_object(&tree).unwrap().detach();
        let sig = gix::actor::Signature { name: "t".into(), email: "t@t".into(), time: gix::date::Time::new(1, 0) };
        let commit = gix::objs::Commit {
            tree,
            parents: Default::default(),
            author: sig.clone(),
            committer: sig,
            encoding: None,
            message: "m\n".into(),
            extra_headers: vec![],
        };
        let commit = repo.write_object(&commit).unwrap().detach();
        let batch = repo.objects.take_object_memory().unwrap();
        persist(&repo, &batch, true, "writing").unwrap();
        let (packs, loose) = files(&objects);
        assert_eq!(loose, 0, "a batch writes no loose object");
        assert_eq!(packs.len(), 2, "one pack and its index: {packs:?}");
        assert!(packs.iter().all(|p| p.starts_with("pack-")), "no temporary file left: {packs:?}");
        // Written again: the same pack, nothing fails.
        persist(&repo, &batch, true, "writing").unwrap();
        assert_eq!(files(&objects).0.len(), 2);

        let idx = packs.iter().find(|p| p.ends_with(".idx")).unwrap();
        let verify = git(&objects.join("pack"), &["verify-pack", "-v", idx]);
        assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
        assert!(String::from_utf8_lossy(&verify.stdout).contains("non delta: 6 objects"));
        for (id, want) in ids.iter().zip(&blobs) {
            let out = git(tmp.path(), &["cat-file", "blob", &id.to_string()]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(&out.stdout, want);
            // gix too, from a handle opened before the pack was there.
            assert_eq!(&before.find_object(*id).unwrap().data, want);
        }
        assert_eq!(before.find_commit(commit).unwrap().tree_id().unwrap(), tree);
        let fsck = git(tmp.path(), &["fsck", "--strict"]);
        assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));

        // One object: loose, where git looks for it.
        let mut repo = gix::open(tmp.path()).unwrap().with_object_memory();
        ids.push(repo.write_blob(b"alone").unwrap().detach());
        let batch = repo.objects.take_object_memory().unwrap();
        persist(&repo, &batch, true, "writing").unwrap();
        persist(&repo, &batch, true, "writing").unwrap();
        let (packs, loose) = files(&objects);
        assert_eq!((packs.len(), loose), (2, 1));
        let out = git(tmp.path(), &["cat-file", "blob", &ids[4].to_string()]);
        assert_eq!(out.stdout, b"alone");
        assert!(git(tmp.path(), &["fsck", "--strict"]).status.success());
    }
}
