//! OCI image layouts built on disk in Rust: real tar layers (some gzip-compressed), config JSON,
//! manifests, indexes, artifacts with a `subject`, and `index.json` with `ref.name` tags.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::http::{
    image_index, image_manifest, random_bytes, sha256, Descriptor, DOCKER_CONFIG, DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_LAYER_GZIP, OCI_MANIFEST,
};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A single image written into a layout.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An OCI image layout directory being written.
pub struct OciLayout {
    pub dir: PathBuf,
    entries: Vec<Value>,
}

impl OciLayout {
    pub fn create(dir: &Path) -> OciLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
        let layout = OciLayout {
            dir: dir.to_owned(),
            entries: Vec::new(),
        };
        layout.save();
        layout
    }

    pub fn add_blob(&mut self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let desc = Descriptor::of(media_type, bytes);
        fs::write(blob_path(&self.dir, &desc.digest), bytes).expect("write blob");
        desc
    }

    /// An image whose layers are tars of the given files; odd-numbered layers are gzip-compressed.
    pub fn add_image(&mut self, arch: &str, layer_files: &[Vec<(String, Vec<u8>)>]) -> Image {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for (i, files) in layer_files.iter().enumerate() {
            let tar = tar_layer(files);
            diff_ids.push(sha256(&tar));
            layers.push(if i % 2 == 1 {
                self.add_blob(OCI_LAYER_GZIP, &gzip_stored(&tar))
            } else {
                self.add_blob(OCI_LAYER, &tar)
            });
        }
        let config = self.add_blob(OCI_CONFIG, &image_config(arch, &diff_ids));
        let manifest_bytes = image_manifest(&config, &layers, None, None);
        let manifest = self.add_blob(OCI_MANIFEST, &manifest_bytes);
        Image {
            manifest,
            config,
            layers,
        }
    }

    /// A Docker schema 2 image (gzip layers, Docker media types).
    pub fn add_docker_image(&mut self, layer_files: &[Vec<(String, Vec<u8>)>]) -> Image {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for files in layer_files {
            let tar = tar_layer(files);
            diff_ids.push(sha256(&tar));
            layers.push(self.add_blob(DOCKER_LAYER_GZIP, &gzip_stored(&tar)));
        }
        let config = self.add_blob(DOCKER_CONFIG, &image_config("amd64", &diff_ids));
        let manifest_bytes = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": config.json(),
            "layers": layers.iter().map(Descriptor::json).collect::<Vec<_>>(),
        }))
        .expect("docker manifest");
        let manifest = self.add_blob(DOCKER_MANIFEST, &manifest_bytes);
        Image {
            manifest,
            config,
            layers,
        }
    }

    /// An image index over images, one platform per image (`linux/<arch>`).
    pub fn add_index(&mut self, images: &[(&str, &Image)]) -> Descriptor {
        let children: Vec<Descriptor> = images.iter().map(|(_, image)| image.manifest.clone()).collect();
        let archs: Vec<&str> = images.iter().map(|(arch, _)| *arch).collect();
        let bytes = image_index(&children, &archs);
        self.add_blob(OCI_INDEX, &bytes)
    }

    /// An artifact manifest: empty config, one layer of `payload`, `artifactType`, annotations and
    /// a `subject` (the manifest it refers to, which need not exist anywhere yet).
    pub fn add_artifact(
        &mut self,
        subject: &Descriptor,
        artifact_type: &str,
        payload: &[u8],
        annotations: Value,
    ) -> Descriptor {
        let config = self.add_blob(OCI_EMPTY, b"{}");
        let layer = self.add_blob("application/octet-stream", payload);
        let mut manifest: Value = serde_json::from_slice(&image_manifest(
            &config,
            &[layer],
            Some(subject),
            Some(artifact_type),
        ))
        .expect("manifest json");
        manifest["annotations"] = annotations;
        self.add_blob(
            OCI_MANIFEST,
            &serde_json::to_vec_pretty(&manifest).expect("artifact json"),
        )
    }

    /// Names a manifest in `index.json` (`org.opencontainers.image.ref.name`) and saves it.
    pub fn tag(&mut self, desc: &Descriptor, name: &str) {
        let mut entry = desc.json();
        entry["annotations"] = json!({ REF_NAME: name });
        self.entries.push(entry);
        self.save();
    }

    fn save(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).expect("json"),
        )
        .expect("index");
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        read_blob(&self.dir, digest)
    }
}

/// Writes an image in skopeo's `dir:` format (`manifest.json`, one file per blob named by hex,
/// `version`): the way to hand skopeo a Docker schema 2 manifest, which `oci:` layouts cannot hold.
pub fn write_dir_image(dir: &Path, layout: &OciLayout, image: &Image) {
    fs::create_dir_all(dir).expect("dir image");
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").expect("version");
    fs::write(dir.join("manifest.json"), layout.blob(&image.manifest.digest)).expect("manifest.json");
    for blob in image.layers.iter().chain([&image.config]) {
        let hex = blob.digest.trim_start_matches("sha256:");
        fs::write(dir.join(hex), layout.blob(&blob.digest)).expect("dir blob");
    }
}

/// The path of a blob in a layout (`blobs/<alg>/<hex>`).
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest with algorithm");
    dir.join("blobs").join(alg).join(hex)
}

pub fn read_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let path = blob_path(dir, digest);
    fs::read(&path).unwrap_or_else(|e| panic!("blob {digest} missing from {}: {e}", dir.display()))
}

/// The descriptor named `name` in a layout's `index.json` (e.g. one skopeo wrote).
pub fn layout_ref(dir: &Path, name: &str) -> Descriptor {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json"))
        .expect("index.json is JSON");
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|e| e["annotations"][REF_NAME].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {}/index.json: {index}", dir.display()));
    Descriptor {
        media_type: entry["mediaType"].as_str().unwrap_or_default().to_owned(),
        digest: entry["digest"].as_str().expect("digest").to_owned(),
        size: entry["size"].as_u64().expect("size"),
    }
}

/// Three layers of generated files (a few KiB to 300 KiB, random so that every run is unique).
pub fn sample_layers(tag: &str) -> Vec<Vec<(String, Vec<u8>)>> {
    vec![
        vec![
            (format!("etc/{tag}.conf"), format!("name = {tag}\n").into_bytes()),
            ("bin/app".to_owned(), random_bytes(300 * 1024)),
        ],
        vec![("usr/share/data.bin".to_owned(), random_bytes(64 * 1024))],
        vec![
            ("var/lib/state".to_owned(), random_bytes(4096)),
            ("README".to_owned(), b"hello\n".to_vec()),
        ],
    ]
}

fn image_config(arch: &str, diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "created": "2026-11-23T15:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created_by": "berth-e2e"})).collect::<Vec<_>>(),
    }))
    .expect("config json")
}

/// A tar archive of the files (mode 0644, fixed mtime), directories created implicitly.
pub fn tar_layer(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content.as_slice())
            .expect("tar entry");
    }
    builder.into_inner().expect("tar")
}

/// Gzip (RFC 1952) with "stored" deflate blocks: valid gzip without a compression library.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        let len = u16::try_from(chunk.len()).expect("chunk <= 65535");
        out.push(last);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
