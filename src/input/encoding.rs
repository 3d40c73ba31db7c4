//! Text encodings of the input. UTF-8 is the rule; a UTF-16 byte-order mark (Excel's
//! "Unicode text") is honoured; anything else that is not UTF-8 (Excel's Windows-1252
//! "CSV") stops the run with the line it is on and the fix, unless `--encoding` names it.
//! Decoding is `encoding_rs`'s, as browsers do it.

use std::io::{self, Write};

use thiserror::Error;

/// An encoding `--encoding` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Encoding {
    #[value(name = "utf-8")]
    Utf8,
    #[value(name = "utf-16le")]
    Utf16Le,
    #[value(name = "utf-16be")]
    Utf16Be,
    #[value(name = "windows-1252")]
    Windows1252,
}

impl Encoding {
    fn standard(self) -> &'static encoding_rs::Encoding {
        match self {
            Encoding::Utf8 => encoding_rs::UTF_8,
            Encoding::Utf16Le => encoding_rs::UTF_16LE,
            Encoding::Utf16Be => encoding_rs::UTF_16BE,
            Encoding::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

/// Bytes that are not text in the input's encoding.
#[derive(Debug, Error)]
#[error("line {line} is not {encoding}")]
pub(crate) struct NotText {
    pub line: u64,
    pub encoding: &'static str,
}

/// `--encoding windows-1252` on a file that is valid UTF-8 and not plain ASCII: decoding
/// it would turn `é` into `Ã©`.
#[derive(Debug, Error)]
#[error("the input is UTF-8 already")]
pub(crate) struct AlreadyUtf8;

/// Decodes the input to UTF-8 as it streams past, counting lines.
pub(crate) struct Transcoder {
    decoder: encoding_rs::Decoder,
    buffer: Vec<u8>,
    /// Line breaks written so far.
    breaks: u64,
    /// With `--encoding windows-1252`: a UTF-8 decoder run beside, while the input is
    /// still valid UTF-8, and whether a byte beyond ASCII was seen.
    utf8_check: Option<encoding_rs::Decoder>,
    non_ascii: bool,
}

impl Transcoder {
    /// `declared` is `--encoding`; without it, UTF-8, or UTF-16 when a BOM says so. A BOM
    /// is always honoured and removed.
    pub(crate) fn new(declared: Option<Encoding>) -> Self {
        let encoding = declared.map_or(encoding_rs::UTF_8, Encoding::standard);
        Self {
            decoder: encoding.new_decoder(),
            buffer: Vec::new(),
            breaks: 0,
            utf8_check: (declared == Some(Encoding::Windows1252))
                .then(|| encoding_rs::UTF_8.new_decoder()),
            non_ascii: false,
        }
    }

    /// Physical lines written so far (line breaks plus one).
    pub(crate) fn lines(&self) -> u64 {
        self.breaks + 1
    }

    /// Decodes `input` (`last` for the final call) and writes the UTF-8 to `out`.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.check_utf8(input, last)?;
        let room = self
            .decoder
            .max_utf8_buffer_length_without_replacement(input.len())
            .unwrap_or(input.len() * 3 + 16);
        self.buffer.resize(room.max(16), 0);
        let mut read = 0;
        loop {
            let (result, used, written) = self.decoder.decode_to_utf8_without_replacement(
                &input[read..],
                &mut self.buffer,
                last,
            );
            read += used;
            let decoded = &self.buffer[..written];
            out.write_all(decoded)?;
            let breaks = memchr::memchr_iter(b'\n', decoded).count() as u64;
            self.breaks += breaks;
            match result {
                encoding_rs::DecoderResult::InputEmpty => return Ok(()),
                encoding_rs::DecoderResult::OutputFull => continue,
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    let encoding = self.decoder.encoding().name();
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        NotText {
                            line: self.lines(),
                            encoding: if encoding == "UTF-8" {
                                "UTF-8"
                            } else {
                                encoding
                            },
                        },
                    ));
                }
            }
        }
    }
}

impl Transcoder {
    /// Refuses, at the end, an input declared Windows-1252 that is UTF-8 beyond ASCII.
    fn check_utf8(&mut self, input: &[u8], last: bool) -> io::Result<()> {
        let Some(check) = &mut self.utf8_check else {
            return Ok(());
        };
        self.non_ascii |= !input.is_ascii();
        let mut scratch = [0u8; 4096];
        let mut read = 0;
        loop {
            let (result, used, _) =
                check.decode_to_utf8_without_replacement(&input[read..], &mut scratch, last);
            read += used;
            match result {
                encoding_rs::DecoderResult::OutputFull => continue,
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    // Not UTF-8: Windows-1252 it may be.
                    self.utf8_check = None;
                    return Ok(());
                }
                encoding_rs::DecoderResult::InputEmpty => break,
            }
        }
        if last && self.non_ascii {
            return Err(io::Error::new(io::ErrorKind::InvalidData, AlreadyUtf8));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], declared: Option<Encoding>) -> Result<String, u64> {
        let mut out = Vec::new();
        let mut transcoder = Transcoder::new(declared);
        // Byte by byte: a BOM or a character split across reads still decodes.
        for (i, byte) in bytes.iter().enumerate() {
            let fed = transcoder.feed(&[*byte], i + 1 == bytes.len(), &mut out);
            if let Err(e) = fed {
                let not_text = e.into_inner().unwrap().downcast::<NotText>().unwrap();
                return Err(not_text.line);
            }
        }
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn utf8_with_or_without_a_bom_passes_through() {
        assert_eq!(decode("id\né\n".as_bytes(), None), Ok("id\né\n".into()));
        assert_eq!(decode(b"\xef\xbb\xbfid\n", None), Ok("id\n".into()));
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("id,é\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&le, None), Ok("id,é\n".into()));
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("id\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&be, None), Ok("id\n".into()));
    }

    #[test]
    fn windows_1252_is_refused_on_a_file_that_is_utf8_beyond_ascii() {
        let mut transcoder = Transcoder::new(Some(Encoding::Windows1252));
        let utf8 = "id,reason\n1,Jürgen Müller\n".as_bytes();
        let mut out = Vec::new();
        // Split inside "ü": still UTF-8.
        transcoder.feed(&utf8[..15], false, &mut out).unwrap();
        let refused = transcoder.feed(&utf8[15..], true, &mut out).unwrap_err();
        assert!(refused.into_inner().unwrap().is::<AlreadyUtf8>());
        assert_eq!(
            decode(b"id\n1,ok\n", Some(Encoding::Windows1252)),
            Ok("id\n1,ok\n".into()),
            "plain ASCII is the same either way"
        );
    }

    #[test]
    fn bytes_that_are_no_utf16_are_named_as_such() {
        // "a", then a lone high surrogate before "b".
        let bytes = [0xff, 0xfe, b'\n', 0, b'a', 0, 0x00, 0xd8, b'b', 0];
        let mut out = Vec::new();
        let refused = Transcoder::new(None)
            .feed(&bytes, true, &mut out)
            .unwrap_err();
        let not_text = refused.into_inner().unwrap().downcast::<NotText>().unwrap();
        assert_eq!((not_text.line, not_text.encoding), (2, "UTF-16LE"));
    }

    #[test]
    fn windows_1252_is_refused_on_a_large_utf8_chunk() {
        // Larger than the check's scratch buffer: it decodes in several rounds.
        let utf8 = "1,Jürgen Müller\n".repeat(1_000);
        let mut transcoder = Transcoder::new(Some(Encoding::Windows1252));
        let refused = transcoder
            .feed(utf8.as_bytes(), true, &mut Vec::new())
            .unwrap_err();
        assert!(refused.into_inner().unwrap().is::<AlreadyUtf8>());
    }

    #[test]
    fn windows_1252_is_refused_on_its_line_unless_declared() {
        let bytes = b"id,reason\n1,ok\n2,caf\xe9\n";
        assert_eq!(decode(bytes, None), Err(3));
        assert_eq!(
            decode(bytes, Some(Encoding::Windows1252)),
            Ok("id,reason\n1,ok\n2,café\n".into())
        );
    }
}
