//! Just enough X.509 for blackbox_exporter's certificate metrics, by hand over DER: serial,
//! issuer and subject (raw, and as Go's `pkix.Name.String()` writes them), validity, subject
//! and authority key identifiers, and the DNS names of the subject alternative names. Pure;
//! anything malformed is an error that says where, never a panic.

use eos_module::civil;

/// Days since 1970-01-01 of a proleptic Gregorian date: the shared calendar arithmetic, kept
/// at this path for its callers.
pub use eos_module::civil::days_from_civil;

/// The parts of a certificate the probe metrics use; slices borrow the DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert<'a> {
    /// The whole certificate.
    pub der: &'a [u8],
    /// The serial number's INTEGER content (two's complement, big-endian).
    pub serial: &'a [u8],
    /// The issuer `Name`, whole TLV.
    pub issuer: &'a [u8],
    /// The subject `Name`, whole TLV.
    pub subject: &'a [u8],
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// The SubjectPublicKeyInfo, whole TLV.
    pub spki: &'a [u8],
    /// Subject alternative names of type dNSName, in order.
    pub dns_names: Vec<String>,
    pub subject_key_id: Option<&'a [u8]>,
    pub authority_key_id: Option<&'a [u8]>,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One TLV: its tag, its content, and the whole encoding.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads TLVs one after another.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { rest: data }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn any(&mut self, what: &str) -> Result<Tlv<'a>, String> {
        let d = self.rest;
        let (&tag, after) = d
            .split_first()
            .ok_or_else(|| format!("{what}: unexpected end of data"))?;
        if tag & 0x1f == 0x1f {
            return Err(format!("{what}: multi-byte tags are not supported"));
        }
        let (&first, after) = after
            .split_first()
            .ok_or_else(|| format!("{what}: no length"))?;
        let (len, after) = if first < 0x80 {
            (usize::from(first), after)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after.len() < n {
                return Err(format!("{what}: bad length"));
            }
            let len = after[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &after[n..])
        };
        if after.len() < len {
            return Err(format!(
                "{what}: truncated ({len} bytes declared, {} left)",
                after.len()
            ));
        }
        let header = d.len() - after.len();
        let tlv = Tlv {
            tag,
            content: &after[..len],
            whole: &d[..header + len],
        };
        self.rest = &after[len..];
        Ok(tlv)
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<Tlv<'a>, String> {
        let t = self.any(what)?;
        if t.tag != tag {
            return Err(format!("{what}: tag 0x{:02x}, expected 0x{tag:02x}", t.tag));
        }
        Ok(t)
    }

    /// The next TLV if it has `tag`.
    fn optional(&mut self, tag: u8, what: &str) -> Result<Option<Tlv<'a>>, String> {
        if self.peek_tag() == Some(tag) {
            self.any(what).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Parses a DER certificate.
pub fn parse(der: &[u8]) -> Result<Cert<'_>, String> {
    let mut outer = Reader::new(der);
    let cert = outer.expect(SEQUENCE, "certificate")?;
    let mut c = Reader::new(cert.content);
    let tbs = c.expect(SEQUENCE, "tbsCertificate")?;
    let mut t = Reader::new(tbs.content);
    t.optional(0xa0, "version")?;
    let serial = t.expect(INTEGER, "serialNumber")?.content;
    t.expect(SEQUENCE, "signature algorithm")?;
    let issuer = t.expect(SEQUENCE, "issuer")?.whole;
    let validity = t.expect(SEQUENCE, "validity")?;
    let mut v = Reader::new(validity.content);
    let not_before = time(&v.any("notBefore")?, "notBefore")?;
    let not_after = time(&v.any("notAfter")?, "notAfter")?;
    let subject = t.expect(SEQUENCE, "subject")?.whole;
    let spki = t.expect(SEQUENCE, "subjectPublicKeyInfo")?.whole;
    t.optional(0x81, "issuerUniqueID")?;
    t.optional(0x82, "subjectUniqueID")?;
    let mut out = Cert {
        der: cert.whole,
        serial,
        issuer,
        subject,
        not_before,
        not_after,
        spki,
        dns_names: Vec::new(),
        subject_key_id: None,
        authority_key_id: None,
    };
    if let Some(exts) = t.optional(0xa3, "extensions")? {
        let mut seq = Reader::new(exts.content);
        let list = seq.expect(SEQUENCE, "extensions")?;
        let mut list = Reader::new(list.content);
        while !list.is_empty() {
            let ext = list.expect(SEQUENCE, "extension")?;
            let mut e = Reader::new(ext.content);
            let oid = e.expect(OID, "extension id")?.content;
            e.optional(BOOLEAN, "critical")?;
            let value = e.expect(OCTET_STRING, "extension value")?.content;
            match oid {
                // 2.5.29.17 subjectAltName
                [0x55, 0x1d, 0x11] => out.dns_names = dns_names(value)?,
                // 2.5.29.14 subjectKeyIdentifier
                [0x55, 0x1d, 0x0e] => {
                    out.subject_key_id = Some(
                        Reader::new(value)
                            .expect(OCTET_STRING, "subjectKeyIdentifier")?
                            .content,
                    )
                }
                // 2.5.29.35 authorityKeyIdentifier: [0] keyIdentifier
                [0x55, 0x1d, 0x23] => {
                    let aki = Reader::new(value).expect(SEQUENCE, "authorityKeyIdentifier")?;
                    out.authority_key_id = Reader::new(aki.content)
                        .optional(0x80, "keyIdentifier")?
                        .map(|k| k.content);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The dNSName entries of a GeneralNames.
fn dns_names(value: &[u8]) -> Result<Vec<String>, String> {
    let names = Reader::new(value).expect(SEQUENCE, "subjectAltName")?;
    let mut r = Reader::new(names.content);
    let mut out = Vec::new();
    while !r.is_empty() {
        let n = r.any("general name")?;
        if n.tag == 0x82 {
            if !n.content.is_ascii() {
                return Err("subjectAltName: a DNS name that is not ASCII".into());
            }
            out.push(String::from_utf8_lossy(n.content).into_owned());
        }
    }
    Ok(out)
}

/// UTCTime or GeneralizedTime as Go's x509 parser reads them, in Unix seconds.
fn time(t: &Tlv<'_>, what: &str) -> Result<i64, String> {
    let s = std::str::from_utf8(t.content).map_err(|_| format!("{what}: not text"))?;
    let bad = || format!("{what}: {s:?} is not a valid time");
    let (year, rest) = match t.tag {
        UTC_TIME => {
            let yy: i64 = digits(s.get(..2).ok_or_else(bad)?).ok_or_else(bad)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        GENERALIZED_TIME => (
            digits(s.get(..4).ok_or_else(bad)?).ok_or_else(bad)?,
            &s[4..],
        ),
        other => return Err(format!("{what}: tag 0x{other:02x} is not a time")),
    };
    let field = |i: usize| rest.get(i..i + 2).and_then(digits::<i64>);
    let (month, day, hour, minute) = (
        field(0).ok_or_else(bad)?,
        field(2).ok_or_else(bad)?,
        field(4).ok_or_else(bad)?,
        field(6).ok_or_else(bad)?,
    );
    let mut tail = &rest[8..];
    let mut second = 0;
    if let Some(sec) = tail.get(..2).and_then(digits::<i64>) {
        second = sec;
        tail = &tail[2..];
    } else if t.tag == GENERALIZED_TIME {
        return Err(bad());
    }
    if t.tag == GENERALIZED_TIME {
        if let Some(frac) = tail.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return Err(bad());
            }
            tail = &frac[n..];
        }
    }
    let offset = match tail {
        "Z" => 0,
        _ if tail.len() == 5 && (tail.starts_with('+') || tail.starts_with('-')) => {
            let h: i64 = digits(&tail[1..3]).ok_or_else(bad)?;
            let m: i64 = digits(&tail[3..5]).ok_or_else(bad)?;
            let o = h * 3600 + m * 60;
            if tail.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    // Go's time.Parse: a day the month has (February 29th only in leap years), and no leap
    // second.
    if !civil::is_valid_date(year, month, day) || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    Ok(civil::to_unix(year, month, day, hour, minute, second) - offset)
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The serial number as blackbox_exporter writes it: `fmt.Sprintf("%x",
/// cert.SerialNumber.Bytes())`, the magnitude's bytes without leading zeros, lower-case hex.
pub fn serial_hex(serial: &[u8]) -> String {
    let negative = serial.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude: Vec<u8> = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = serial.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        serial.to_vec()
    };
    let start = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    hex(&magnitude[start..])
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// An attribute of a name: its OID (content bytes) and its value as Go decodes it.
struct Attr<'a> {
    oid: &'a [u8],
    value: String,
}

/// A `Name` (whole TLV) as Go's `pkix.Name.String()` writes it: the well-known attributes
/// regrouped in Go's order (`SERIALNUMBER`, `CN`, `OU`, `O`, `POSTALCODE`, `STREET`, `L`,
/// `ST`, `C`; several values of one type in one `+`-joined RDN; the last `CN` only), then any
/// other attribute as `<oid>=#<hex of its value re-encoded by Go>`, RFC 2253 escaping.
pub fn name_string(name: &[u8]) -> Result<String, String> {
    let seq = Reader::new(name).expect(SEQUENCE, "name")?;
    let mut rdns = Reader::new(seq.content);
    let mut attrs: Vec<Attr<'_>> = Vec::new();
    while !rdns.is_empty() {
        let set = rdns.expect(SET, "relative distinguished name")?;
        let mut set = Reader::new(set.content);
        while !set.is_empty() {
            let atv = set.expect(SEQUENCE, "attribute")?;
            let mut a = Reader::new(atv.content);
            let oid = a.expect(OID, "attribute type")?.content;
            let value = a.any("attribute value")?;
            attrs.push(Attr {
                oid,
                value: asn1_string(&value)?,
            });
        }
    }
    // 2.5.4.x, the attributes Go parses into named fields.
    let std_attr = |oid: &[u8]| match oid {
        [0x55, 0x04, n] if matches!(n, 3 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 17) => Some(*n),
        _ => None,
    };
    let values = |n: u8| -> Vec<&str> {
        attrs
            .iter()
            .filter(|a| std_attr(a.oid) == Some(n))
            .map(|a| a.value.as_str())
            .collect()
    };
    // Go's RDN sequence: the other attributes first, then C, ST, L, STREET, POSTALCODE, O,
    // OU, CN, SERIALNUMBER; written in reverse.
    let mut seq: Vec<Vec<String>> = Vec::new();
    for a in attrs.iter().filter(|a| std_attr(a.oid).is_none()) {
        seq.push(vec![format!(
            "{}=#{}",
            oid_string(a.oid),
            hex(&go_marshal_string(&a.value))
        )]);
    }
    for (n, label) in [
        (6, "C"),
        (8, "ST"),
        (7, "L"),
        (9, "STREET"),
        (17, "POSTALCODE"),
        (10, "O"),
        (11, "OU"),
    ] {
        let v = values(n);
        if !v.is_empty() {
            seq.push(v.iter().map(|v| format!("{label}={}", escape(v))).collect());
        }
    }
    for (n, label) in [(3, "CN"), (5, "SERIALNUMBER")] {
        if let Some(v) = values(n).last().filter(|v| !v.is_empty()) {
            seq.push(vec![format!("{label}={}", escape(v))]);
        }
    }
    Ok(seq
        .iter()
        .rev()
        .map(|rdn| rdn.join("+"))
        .collect::<Vec<_>>()
        .join(","))
}

/// A directory string as Go's x509 parser decodes it (it refuses other types).
fn asn1_string(t: &Tlv<'_>) -> Result<String, String> {
    let c = t.content;
    match t.tag {
        // UTF8String
        0x0c => std::str::from_utf8(c)
            .map(str::to_string)
            .map_err(|_| "a UTF8String that is not UTF-8".into()),
        // PrintableString, IA5String, NumericString: ASCII.
        0x13 | 0x16 | 0x12 => {
            if c.is_ascii() {
                Ok(String::from_utf8_lossy(c).into_owned())
            } else {
                Err("a string that should be ASCII is not".into())
            }
        }
        // T61String: Go takes the bytes as they are.
        0x14 => Ok(String::from_utf8_lossy(c).into_owned()),
        // BMPString: UCS-2.
        0x1e => {
            if c.len() % 2 != 0 {
                return Err("a BMPString of odd length".into());
            }
            let units: Vec<u16> = c
                .chunks_exact(2)
                .map(|p| u16::from_be_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16(&units).map_err(|_| "a BMPString that is not UCS-2".into())
        }
        other => Err(format!(
            "attribute value type 0x{other:02x} is not supported"
        )),
    }
}

/// RFC 2253 escaping as Go's `RDNSequence.String()` does it.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.len().saturating_sub(1);
    for (k, c) in v.char_indices() {
        let esc = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if esc {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An OID's dotted form.
fn oid_string(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Go's `asn1.Marshal` of a string: PrintableString if every character is one, else
/// UTF8String.
fn go_marshal_string(v: &str) -> Vec<u8> {
    let printable = v.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b' ' | b'\'' | b'(' | b')' | b'+' | b',' | b'-' | b'.' | b'/' | b':' | b'=' | b'?'
            )
    });
    let mut out = vec![if printable { 0x13 } else { 0x0c }];
    let len = v.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(v.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name TLV from (oid content, tag, value) triples, one RDN each, or several in one
    /// RDN when grouped.
    /// (attribute type OID content, value tag, value).
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    fn name(rdns: &[&[Atv<'_>]]) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if content.len() < 0x80 {
                v.push(content.len() as u8);
            } else {
                v.push(0x81);
                v.push(content.len() as u8);
            }
            v.extend_from_slice(content);
            v
        }
        let mut seq = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (oid, tag, value) in rdn.iter() {
                let mut atv = tlv(OID, oid);
                atv.extend(tlv(*tag, value));
                set.extend(tlv(SEQUENCE, &atv));
            }
            seq.extend(tlv(SET, &set));
        }
        tlv(SEQUENCE, &seq)
    }

    const CN: &[u8] = &[0x55, 4, 3];
    const C: &[u8] = &[0x55, 4, 6];
    const O: &[u8] = &[0x55, 4, 10];
    const OU: &[u8] = &[0x55, 4, 11];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn names_as_go_writes_them() {
        // Written C, O, OU, OU, CN, email: Go regroups and reverses.
        let n = name(&[
            &[(C, 0x13, b"DE")],
            &[(O, 0x0c, b"Eos, Inc.")],
            &[(OU, 0x0c, b"b")],
            &[(OU, 0x0c, b"a")],
            &[(CN, 0x0c, b"probe.test")],
            &[(EMAIL, 0x16, b"ops@example.com")],
        ]);
        assert_eq!(
            name_string(&n).unwrap(),
            "CN=probe.test,OU=b+OU=a,O=Eos\\, Inc.,C=DE,1.2.840.113549.1.9.1=#0c0f6f7073406578616d706c652e636f6d"
        );
        // Order in the certificate does not matter; the last CN wins; escaping.
        let n = name(&[
            &[(CN, 0x13, b"first")],
            &[(CN, 0x0c, b" #x+y;\"<> ")],
            &[(O, 0x13, b"#lead")],
            &[(C, 0x13, b"US")],
        ]);
        assert_eq!(
            name_string(&n).unwrap(),
            "CN=\\ #x\\+y\\;\\\"\\<\\>\\ ,O=\\#lead,C=US"
        );
        // An unknown attribute with a printable value re-encodes as PrintableString.
        let n = name(&[&[(&[0x55, 4, 4], 0x0c, b"Doe")]]);
        assert_eq!(name_string(&n).unwrap(), "2.5.4.4=#1303446f65");
        // BMPString is decoded.
        let n = name(&[&[(CN, 0x1e, &[0, b'h', 0, b'i'])]]);
        assert_eq!(name_string(&n).unwrap(), "CN=hi");
        assert_eq!(name_string(&name(&[])).unwrap(), "");
        assert!(name_string(&name(&[&[(CN, 0x03, b"x")]])).is_err());
        assert!(name_string(b"\x30\x05\x31").is_err());
    }

    /// A certificate made by openssl (CA `/CN=Test Root/O=Tests`, serial 0x00bff0aa, a
    /// subject with ST, L, OU, emailAddress and serialNumber, SANs with an IP and an email),
    /// and what blackbox_exporter 0.23 reported for it (probed with the Debian package).
    const OPENSSL_LEAF_HEX: &str = concat!(
        "3082021d308201c2a003020102020400bff0aa300a06082a8648ce3d04030230243112301006035504030c0954657374",
        "20526f6f74310e300c060355040a0c055465737473301e170d3236313133303036303033355a170d3238303130343036",
        "303033355a308191310b3009060355040613024445310f300d06035504080c064265726c696e310f300d06035504070c",
        "064265726c696e31123010060355040a0c09456f732c20496e632e310a3008060355040b0c0161311330110603550403",
        "0c0a70726f62652e74657374311e301c06092a864886f70d010901160f6f7073406578616d706c652e636f6d310b3009",
        "0603550405130234323059301306072a8648ce3d020106082a8648ce3d03010703420004e4f05849bbbf7d1b9bde94a3",
        "5b8581e1b000ab1a89b8663766eb4cc99e6d28adf9922c1a34b4a58b91fd692c27edbefccdaebced4199416d327fbe14",
        "3590ad59a374307230300603551d1104293027820a70726f62652e74657374820c2a2e70726f62652e7465737487047f",
        "00000181057840792e7a301d0603551d0e041604141f968b244d568a467b9f55b84daf5bf6ecd2e102301f0603551d23",
        "041830168014dc98c1d31f39797b1881c643d6415d9b48edfd84300a06082a8648ce3d0403020349003046022100f7bd",
        "5df545ff83b3d90ec0549e3a3260e7d4f4d04f1d397835f248569807ebb1022100df7b9bb7d1d80e2ce9660661c2f3e2",
        "c44815a0c91093c9d344bd801c987b09a3",
    );

    #[test]
    fn matches_blackbox_on_an_openssl_certificate() {
        let der: Vec<u8> = (0..OPENSSL_LEAF_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&OPENSSL_LEAF_HEX[i..i + 2], 16).unwrap())
            .collect();
        let c = parse(&der).unwrap();
        assert_eq!(
            name_string(c.subject).unwrap(),
            "SERIALNUMBER=42,CN=probe.test,OU=a,O=Eos\\, Inc.,L=Berlin,ST=Berlin,C=DE,1.2.840.113549.1.9.1=#0c0f6f7073406578616d706c652e636f6d"
        );
        assert_eq!(name_string(c.issuer).unwrap(), "CN=Test Root,O=Tests");
        assert_eq!(c.dns_names.join(","), "probe.test,*.probe.test");
        assert_eq!(serial_hex(c.serial), "bff0aa");
        assert_eq!(c.not_after, 1_830_578_435);
        assert_eq!(
            hex(ring::digest::digest(&ring::digest::SHA256, &der).as_ref()),
            "6d73688fc0dd04042648a65e443d6565f13e56c9964ec4db3a235982a3d6ab42"
        );
    }

    #[test]
    fn serials_as_blackbox_writes_them() {
        assert_eq!(serial_hex(&[0x00, 0xab, 0x01]), "ab01");
        // %x of a byte slice: two digits a byte, so a leading zero nibble stays.
        assert_eq!(serial_hex(&[0x0b, 0xff]), "0bff");
        assert_eq!(serial_hex(&[0x00]), "");
        assert_eq!(serial_hex(&[0xff, 0x01]), "ff", "-255: the magnitude");
        assert_eq!(serial_hex(&[0x80]), "80", "-128");
    }

    #[test]
    fn times() {
        let t = |tag: u8, s: &str| {
            time(
                &Tlv {
                    tag,
                    content: s.as_bytes(),
                    whole: &[],
                },
                "t",
            )
        };
        assert_eq!(t(UTC_TIME, "700101000000Z"), Ok(0));
        assert_eq!(t(UTC_TIME, "491231235959Z"), Ok(2_524_607_999));
        assert_eq!(t(UTC_TIME, "500101000000Z"), Ok(-631_152_000));
        assert_eq!(t(UTC_TIME, "3801190314Z"), Ok(2_147_483_640), "no seconds");
        assert_eq!(t(GENERALIZED_TIME, "20380119031408Z"), Ok(2_147_483_648));
        assert_eq!(
            t(GENERALIZED_TIME, "20380119041408+0100"),
            Ok(2_147_483_648)
        );
        assert_eq!(t(GENERALIZED_TIME, "20380119031408.5Z"), Ok(2_147_483_648));
        assert!(t(GENERALIZED_TIME, "2038011903Z").is_err());
        assert!(t(UTC_TIME, "701301000000Z").is_err());
        // Days the month does not have, and a leap second, as Go refuses them.
        assert!(t(UTC_TIME, "700431000000Z").is_err());
        assert!(t(UTC_TIME, "230229000000Z").is_err());
        assert!(t(UTC_TIME, "240229000000Z").is_ok());
        assert!(t(GENERALIZED_TIME, "21000229000000Z").is_err());
        assert!(t(UTC_TIME, "701231235960Z").is_err());
        assert!(t(UTC_TIME, "7001010000").is_err());
        assert!(t(0x04, "700101000000Z").is_err());
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rcgen_certificates() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![
            "a.test".to_string(),
            "10.0.0.1".into(),
            "b.test".into(),
        ])
        .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Eos");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "a.test");
        params.not_before = rcgen::date_time_ymd(2020, 2, 29);
        params.not_after =
            rcgen::date_time_ymd(2035, 6, 15) + std::time::Duration::from_secs(45_296);
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x0b, 0xff, 0x01]));
        params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![1, 2, 3, 4]);
        params.is_ca = rcgen::IsCa::ExplicitNoCa; // writes the subject key identifier
        params.use_authority_key_identifier_extension = true;
        let cert = params.self_signed(&key).unwrap();
        let c = parse(cert.der()).unwrap();
        assert_eq!(c.der, cert.der().as_ref());
        assert_eq!(c.not_before, 1_582_934_400);
        assert_eq!(c.not_after, 2_065_523_696, "2035-06-15T12:34:56Z");
        assert_eq!(serial_hex(c.serial), "0bff01");
        assert_eq!(
            c.dns_names,
            ["a.test", "b.test"],
            "IP addresses are not DNS names"
        );
        assert_eq!(name_string(c.subject).unwrap(), "CN=a.test,O=Eos,C=DE");
        assert_eq!(c.subject, c.issuer);
        assert_eq!(c.subject_key_id, Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(c.authority_key_id, Some(&[1u8, 2, 3, 4][..]));
        assert!(c.spki.starts_with(&[0x30]));
        // Every truncation is an error, not a panic.
        for n in 0..cert.der().len() {
            assert!(parse(&cert.der()[..n]).is_err(), "{n}");
        }
        assert!(parse(b"").is_err());
    }

    proptest::proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// A server's certificate is outside input: any bytes, and any change to a real
        /// certificate, parse to a value or an error, never a panic.
        #[test]
        fn fuzz_certificates(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
                             at in 0usize..4096, to in proptest::prelude::any::<u8>()) {
            let _ = parse(&bytes);
            let _ = name_string(&bytes);
            let _ = serial_hex(&bytes);
            let der = rcgen_der();
            let mut changed = der.clone();
            let i = at % changed.len();
            changed[i] = to;
            if let Ok(c) = parse(&changed) {
                let _ = name_string(c.subject);
                let _ = name_string(c.issuer);
            }
        }
    }

    fn rcgen_der() -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["probe.test".to_string()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }
}
