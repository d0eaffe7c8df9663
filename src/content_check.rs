//! Uploaded files checked whole, not by their first bytes (issue 13, item 4): a JPG or
//! PNG must decode completely (and meet the material's pixel dimensions, when the
//! definition gives them), a PDF must parse as a PDF document. A file whose first bytes
//! look right but whose body is not what they claim (a 15-byte "%PDF", 20 MB of zeros
//! behind a JPEG header) is refused.
//!
//! Decoding is CPU work: callers run [`check_file`] on a blocking thread. Images are
//! decoded under [`image::Limits`] (at most [`MAX_PIXELS_SIDE`] pixels a side and
//! [`MAX_DECODE_BYTES`] of memory), so a small file that claims a huge picture (a
//! decompression bomb) is refused from its header before any pixel is decoded.
//!
//! OFD documents (ZIP containers) are recognised by content and name only; their inner
//! structure is not checked here.

use std::io::BufReader;
use std::path::Path;

use crate::domain::catalogue::Material;

/// The largest width or height an uploaded image may claim.
pub const MAX_PIXELS_SIDE: u32 = 12_000;
/// The most memory decoding one uploaded image may take.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a file's content was refused; each says it in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The image does not decode.
    BrokenImage,
    /// The PDF does not parse.
    BrokenPdf,
    /// The image is larger than the decoder accepts (pixels or memory).
    ImageTooLarge {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The image is smaller than the material requires.
    TooFewPixels {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The least width and height.
        min: (u32, u32),
    },
    /// The image is larger than the material allows.
    TooManyPixels {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The greatest width and height.
        max: (u32, u32),
    },
}

impl Refusal {
    /// (Chinese, English) text for the problem document.
    pub fn message(&self) -> (String, String) {
        match self {
            Refusal::BrokenImage => (
                "图片无法完整读取（文件已损坏或并非真正的 JPG/PNG 图片），请重新拍摄或扫描后上传。".into(),
                "The image cannot be read in full (it is damaged or not really a JPG/PNG picture); please take or scan it again.".into(),
            ),
            Refusal::BrokenPdf => (
                "PDF 文件无法读取（文件已损坏或并非真正的 PDF），请重新生成后上传。".into(),
                "The PDF cannot be read (it is damaged or not really a PDF document); please produce it again.".into(),
            ),
            Refusal::ImageTooLarge { width, height } => (
                format!("图片尺寸 {width}×{height} 像素过大，无法处理。"),
                format!("The image is {width}×{height} pixels, too large to process."),
            ),
            Refusal::TooFewPixels {
                width,
                height,
                min,
            } => (
                format!(
                    "图片为 {width}×{height} 像素，本材料要求至少 {}×{} 像素。",
                    min.0, min.1
                ),
                format!(
                    "The image is {width}×{height} pixels; this material needs at least {}×{} pixels.",
                    min.0, min.1
                ),
            ),
            Refusal::TooManyPixels {
                width,
                height,
                max,
            } => (
                format!(
                    "图片为 {width}×{height} 像素，本材料要求不超过 {}×{} 像素。",
                    max.0, max.1
                ),
                format!(
                    "The image is {width}×{height} pixels; this material allows at most {}×{} pixels.",
                    max.0, max.1
                ),
            ),
        }
    }
}

/// What a checked file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Pixel dimensions, for images.
    pub dimensions: Option<(u32, u32)>,
}

fn limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(MAX_PIXELS_SIDE);
    l.max_image_height = Some(MAX_PIXELS_SIDE);
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

fn image_format(file_type: &str) -> Option<image::ImageFormat> {
    match file_type {
        "jpg" => Some(image::ImageFormat::Jpeg),
        "png" => Some(image::ImageFormat::Png),
        _ => None,
    }
}

/// Checks the file at `path`, sniffed as `file_type` (`pdf`, `jpg`, `png`, `ofd`),
/// against its format and, when given, the material's pixel dimensions. Blocking.
pub fn check_file(
    path: &Path,
    file_type: &str,
    material: Option<&Material>,
) -> std::io::Result<Result<Checked, Refusal>> {
    if let Some(format) = image_format(file_type) {
        let open = || -> std::io::Result<image::ImageReader<BufReader<std::fs::File>>> {
            let mut r =
                image::ImageReader::with_format(BufReader::new(std::fs::File::open(path)?), format);
            r.limits(limits());
            Ok(r)
        };
        // the header first: a picture too large is refused before decoding
        let (width, height) = match open()?.into_dimensions() {
            Ok(d) => d,
            Err(image::ImageError::Limits(_)) => {
                return Ok(Err(Refusal::ImageTooLarge {
                    width: 0,
                    height: 0,
                }));
            }
            Err(_) => return Ok(Err(Refusal::BrokenImage)),
        };
        if width > MAX_PIXELS_SIDE || height > MAX_PIXELS_SIDE {
            return Ok(Err(Refusal::ImageTooLarge { width, height }));
        }
        if let Some(refusal) = material.and_then(|m| dimension_refusal(m, width, height)) {
            return Ok(Err(refusal));
        }
        // the decoder fills a cut-off picture in; a whole JPEG ends its last scan
        if format == image::ImageFormat::Jpeg && !jpeg_complete(&std::fs::read(path)?) {
            return Ok(Err(Refusal::BrokenImage));
        }
        return Ok(match open()?.decode() {
            Ok(_) => Ok(Checked {
                dimensions: Some((width, height)),
            }),
            Err(image::ImageError::Limits(_)) => Err(Refusal::ImageTooLarge { width, height }),
            Err(_) => Err(Refusal::BrokenImage),
        });
    }
    if file_type == "pdf" {
        let bytes = std::fs::read(path)?;
        return Ok(match lopdf::Document::load_mem(&bytes) {
            Ok(doc) if doc.get_pages().is_empty() => Err(Refusal::BrokenPdf),
            Ok(_) => Ok(Checked { dimensions: None }),
            Err(_) => Err(Refusal::BrokenPdf),
        });
    }
    Ok(Ok(Checked { dimensions: None }))
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. Inside entropy-coded
/// data a 0xFF byte is always followed by 0x00 or a restart marker, so the last start-of-
/// scan marker (0xFFDA) is the main picture's last scan (an Exif thumbnail's come before
/// it), and a file cut off inside it has no 0xFFD9 after it.
fn jpeg_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

/// The refusal when `width`×`height` falls outside the material's pixel dimensions.
pub fn dimension_refusal(m: &Material, width: u32, height: u32) -> Option<Refusal> {
    if let (Some(w), Some(h)) = (m.min_width_px, m.min_height_px)
        && (width < w || height < h)
    {
        return Some(Refusal::TooFewPixels {
            width,
            height,
            min: (w, h),
        });
    }
    if let (Some(w), Some(h)) = (m.max_width_px, m.max_height_px)
        && (width > w || height > h)
    {
        return Some(Refusal::TooManyPixels {
            width,
            height,
            max: (w, h),
        });
    }
    None
}

/// The pixel dimensions of an image's bytes (header only), for checking an upload
/// against a material when it is used; `None` for what is not a readable image.
pub fn image_dimensions(bytes: &[u8], file_type: &str) -> Option<(u32, u32)> {
    let format = image_format(file_type)?;
    let mut r = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    r.limits(limits());
    r.into_dimensions().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 180, 160]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .expect("encode");
        out.into_inner()
    }

    fn pdf() -> Vec<u8> {
        use lopdf::{Document, Object, dictionary};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => vec![page_id.into()],
                "Count" => 1,
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).expect("save");
        out
    }

    fn photo() -> Material {
        let mut m: Material = toml::from_str(
            r#"
            id = "photo"
            name = "照片"
            name_en = "Photo"
            required = true
            form = "electronic"
            file_types = ["jpg"]
            max_size_mb = 1
            min_width_px = 358
            min_height_px = 441
            max_width_px = 1200
            max_height_px = 1600
            "#,
        )
        .expect("material");
        m.copies = 1;
        m
    }

    #[test]
    fn a_real_jpeg_and_pdf_pass() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = write(&dir, "a.jpg", &jpeg(400, 500));
        assert_eq!(
            check_file(&p, "jpg", Some(&photo())).expect("io"),
            Ok(Checked {
                dimensions: Some((400, 500))
            })
        );
        let p = write(&dir, "a.pdf", &pdf());
        assert_eq!(
            check_file(&p, "pdf", None).expect("io"),
            Ok(Checked { dimensions: None })
        );
    }

    #[test]
    fn a_jpeg_header_before_zeros_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut bytes = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01,
        ];
        bytes.extend(std::iter::repeat_n(0u8, 2 * 1024 * 1024));
        let p = write(&dir, "z.jpg", &bytes);
        assert_eq!(
            check_file(&p, "jpg", None).expect("io"),
            Err(Refusal::BrokenImage)
        );
        // a truncated real JPEG too
        let good = jpeg(400, 500);
        let p = write(&dir, "t.jpg", &good[..good.len() / 2]);
        assert_eq!(
            check_file(&p, "jpg", None).expect("io"),
            Err(Refusal::BrokenImage)
        );
    }

    #[test]
    fn a_pdf_header_alone_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        for bytes in [&b"%PDF-1.4\n%%EOF\n"[..], b"%PDF-1.4\n% application form\n"] {
            let p = write(&dir, "x.pdf", bytes);
            assert_eq!(
                check_file(&p, "pdf", None).expect("io"),
                Err(Refusal::BrokenPdf),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn dimensions_outside_the_material_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = write(&dir, "s.jpg", &jpeg(100, 120));
        assert_eq!(
            check_file(&p, "jpg", Some(&photo())).expect("io"),
            Err(Refusal::TooFewPixels {
                width: 100,
                height: 120,
                min: (358, 441)
            })
        );
        let p = write(&dir, "l.jpg", &jpeg(1300, 1700));
        assert!(matches!(
            check_file(&p, "jpg", Some(&photo())).expect("io"),
            Err(Refusal::TooManyPixels { .. })
        ));
        // without a material only decoding counts
        assert!(check_file(&p, "jpg", None).expect("io").is_ok());
    }

    #[test]
    fn a_picture_claiming_to_be_huge_is_refused_from_its_header() {
        // a PNG header claiming 100000×100000 pixels
        let img = image::GrayImage::from_pixel(1, 1, image::Luma([0]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        let mut bytes = out.into_inner();
        // IHDR width and height at bytes 16..24
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let dir = tempfile::tempdir().expect("tmp");
        let p = write(&dir, "bomb.png", &bytes);
        let r = check_file(&p, "png", None).expect("io");
        assert!(
            matches!(
                r,
                Err(Refusal::ImageTooLarge { .. }) | Err(Refusal::BrokenImage)
            ),
            "{r:?}"
        );
    }

    #[test]
    fn both_languages_name_the_numbers() {
        let (zh, en) = Refusal::TooFewPixels {
            width: 1,
            height: 2,
            min: (358, 441),
        }
        .message();
        assert!(zh.contains("358×441") && en.contains("358×441"));
        assert!(!en.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
    }
}
