//! Turns the message schemas in `schema/*.schema` (form: `schema/README.md`)
//! into Rust: one module per API with its structs, `Default`, `with_*`
//! builders, and version-aware encoders and decoders over `crate::wire`.
//!
//! The generated decoders never allocate from a wire-declared count before
//! checking it against the bytes left (that check lives in `wire::Reader`,
//! which every generated array read goes through), so a hostile count is a
//! decode error by construction.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let dir = Path::new("schema");
    println!("cargo:rerun-if-changed=schema");
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "schema"))
        .collect();
    files.sort();
    let mut out = String::new();
    let mut apis = Vec::new();
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let module = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_else(|| panic!("{}: bad file name", path.display()))
            .to_string();
        let file = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push_str(&generate(&module, &file));
        if let Some(api) = &file.api {
            apis.push((
                module,
                api.clone(),
                file.request.clone(),
                file.response.clone(),
            ));
        }
    }
    out.push_str(&generate_api_table(&apis));
    let dest = Path::new(&env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}")))
        .join("messages.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}

// ---------------------------------------------------------------- model

#[derive(Debug, Clone, Copy)]
struct Versions {
    lo: i16,
    hi: i16, // inclusive; i16::MAX for "N+"
}

impl Versions {
    fn parse(s: &str) -> Result<Self, String> {
        if let Some(lo) = s.strip_suffix('+') {
            let lo = lo.parse().map_err(|_| format!("bad versions {s:?}"))?;
            return Ok(Self { lo, hi: i16::MAX });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let lo = lo.parse().map_err(|_| format!("bad versions {s:?}"))?;
            let hi = hi.parse().map_err(|_| format!("bad versions {s:?}"))?;
            return Ok(Self { lo, hi });
        }
        let v = s.parse().map_err(|_| format!("bad versions {s:?}"))?;
        Ok(Self { lo: v, hi: v })
    }

    /// A Rust condition on `version`.
    fn cond(&self) -> String {
        match (self.lo, self.hi) {
            (lo, i16::MAX) if lo <= 0 => "true".into(),
            (lo, i16::MAX) => format!("version >= {lo}"),
            (lo, hi) if lo <= 0 => format!("version <= {hi}"),
            (lo, hi) => format!("({lo}..={hi}).contains(&version)"),
        }
    }
}

#[derive(Debug, Clone)]
enum Ty {
    Prim(&'static str),
    Uuid,
    Str,
    Bytes,
    Records,
    Array(Box<Ty>),
    Struct(String),
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: Ty,
    versions: Versions,
    nullable: Option<Versions>,
    tag: Option<u32>,
    default: Option<String>,
    doc: String,
}

#[derive(Debug, Clone)]
struct Struct {
    name: String,
    doc: String,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Api {
    key: i16,
    name: String,
    versions: Versions,
    flexible: Option<i16>,
}

#[derive(Debug, Default)]
struct File {
    api: Option<Api>,
    /// `data` structures: name → (versions, flexible).
    data: BTreeMap<String, (Versions, Option<i16>)>,
    request: String,
    response: String,
    /// Every struct, top-level first, in declaration order.
    structs: Vec<Struct>,
    tops: Vec<String>,
}

// ---------------------------------------------------------------- parser

fn split_doc(line: &str) -> (&str, String) {
    match line.split_once(" # ") {
        Some((code, doc)) => (code.trim_end(), doc.trim().to_string()),
        None => (line.trim_end(), String::new()),
    }
}

fn parse_flexible(s: &str) -> Result<Option<i16>, String> {
    if s == "none" {
        return Ok(None);
    }
    Versions::parse(s).map(|v| Some(v.lo))
}

fn parse(text: &str) -> Result<File, String> {
    let mut file = File::default();
    // Stack of (indent, struct index) for nesting.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut pending: Option<(usize, String)> = None; // a struct field awaiting its fields
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let (code, doc) = split_doc(raw.trim_start());
        let err = |m: String| format!("line {lineno}: {m}");
        let words: Vec<&str> = code.split_whitespace().collect();
        if indent == 0 {
            stack.clear();
            pending = None;
            match words.first().copied() {
                Some("api") => {
                    // api KEY Name versions LO-HI flexible V+
                    if words.len() != 7 || words[3] != "versions" || words[5] != "flexible" {
                        return Err(err(format!("bad api line {code:?}")));
                    }
                    file.api = Some(Api {
                        key: words[1].parse().map_err(|_| err("bad api key".into()))?,
                        name: words[2].to_string(),
                        versions: Versions::parse(words[4]).map_err(err)?,
                        flexible: parse_flexible(words[6]).map_err(err)?,
                    });
                }
                Some(kind @ ("request" | "response")) => {
                    let name = words.get(1).ok_or_else(|| err("missing name".into()))?;
                    if kind == "request" {
                        file.request = name.to_string();
                    } else {
                        file.response = name.to_string();
                    }
                    file.tops.push(name.to_string());
                    file.structs.push(Struct {
                        name: name.to_string(),
                        doc,
                        fields: vec![],
                    });
                    stack.push((0, file.structs.len() - 1));
                }
                Some("data") => {
                    if words.len() != 6 || words[2] != "versions" || words[4] != "flexible" {
                        return Err(err(format!("bad data line {code:?}")));
                    }
                    let name = words[1].to_string();
                    file.data.insert(
                        name.clone(),
                        (
                            Versions::parse(words[3]).map_err(err)?,
                            parse_flexible(words[5]).map_err(err)?,
                        ),
                    );
                    file.tops.push(name.clone());
                    file.structs.push(Struct {
                        name,
                        doc,
                        fields: vec![],
                    });
                    stack.push((0, file.structs.len() - 1));
                }
                _ => return Err(err(format!("unexpected {code:?}"))),
            }
            continue;
        }
        // A field line: two spaces per level, level 1 = the top-level struct.
        if indent % 2 != 0 {
            return Err(err(format!(
                "indentation {indent} is not a multiple of two"
            )));
        }
        let level = indent / 2;
        if let Some((pending_level, name)) = pending.take() {
            if level == pending_level + 1 {
                let doc = file
                    .structs
                    .iter()
                    .flat_map(|s| s.fields.iter())
                    .rev()
                    .find(|f| struct_name(&f.ty) == Some(name.as_str()))
                    .map(|f| f.doc.clone())
                    .unwrap_or_default();
                file.structs.push(Struct {
                    name,
                    doc,
                    fields: vec![],
                });
                stack.push((level, file.structs.len() - 1));
            } else if !file.structs.iter().any(|s| s.name == name) {
                return Err(err(format!("struct {name} is used before it is declared")));
            }
        }
        while stack.len() > level {
            stack.pop();
        }
        if stack.len() != level {
            return Err(err(format!(
                "field at level {level} has no struct to belong to"
            )));
        }
        let Some(&(_, owner)) = stack.last() else {
            return Err(err("field outside a struct".into()));
        };
        let field = parse_field(code, doc).map_err(err)?;
        if let Some(name) = struct_name(&field.ty) {
            pending = Some((level, name.to_string()));
        }
        file.structs[owner].fields.push(field);
    }
    if let Some((_, name)) = pending {
        if !file.structs.iter().any(|s| s.name == name) {
            return Err(format!("struct {name} has no fields"));
        }
    }
    for s in &file.structs {
        if s.doc.is_empty() {
            return Err(format!("struct {} has no doc", s.name));
        }
        for f in &s.fields {
            if f.doc.is_empty() {
                return Err(format!("field {}.{} has no doc", s.name, f.name));
            }
        }
    }
    Ok(file)
}

fn struct_name(ty: &Ty) -> Option<&str> {
    match ty {
        Ty::Struct(n) => Some(n),
        Ty::Array(inner) => struct_name(inner),
        _ => None,
    }
}

fn parse_ty(s: &str) -> Result<Ty, String> {
    if let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        return Ok(Ty::Array(Box::new(parse_ty(inner)?)));
    }
    Ok(match s {
        "bool" => Ty::Prim("bool"),
        "i8" => Ty::Prim("i8"),
        "i16" => Ty::Prim("i16"),
        "i32" => Ty::Prim("i32"),
        "i64" => Ty::Prim("i64"),
        "u16" => Ty::Prim("u16"),
        "u32" => Ty::Prim("u32"),
        "f64" => Ty::Prim("f64"),
        "uuid" => Ty::Uuid,
        "string" => Ty::Str,
        "bytes" => Ty::Bytes,
        "records" => Ty::Records,
        other if other.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Ty::Struct(other.to_string())
        }
        other => return Err(format!("unknown type {other:?}")),
    })
}

fn parse_field(code: &str, doc: String) -> Result<Field, String> {
    let (name, rest) = code
        .split_once(':')
        .ok_or_else(|| format!("no ':' in {code:?}"))?;
    let mut words = rest.split_whitespace();
    let ty = parse_ty(words.next().ok_or("missing type")?)?;
    let versions = Versions::parse(words.next().ok_or("missing versions")?)?;
    let mut field = Field {
        name: name.trim().to_string(),
        ty,
        versions,
        nullable: None,
        tag: None,
        default: None,
        doc,
    };
    let rest: Vec<&str> = words.collect();
    let mut i = 0;
    while i < rest.len() {
        let value = rest
            .get(i + 1)
            .ok_or_else(|| format!("{} needs a value", rest[i]))?;
        match rest[i] {
            "nullable" => field.nullable = Some(Versions::parse(value)?),
            "tag" => field.tag = Some(value.parse().map_err(|_| format!("bad tag {value}"))?),
            "default" => {
                // A quoted default may hold spaces.
                if value.starts_with('"') && !(value.len() > 1 && value.ends_with('"')) {
                    let mut s = value.to_string();
                    while !s.ends_with('"') || s.len() == 1 {
                        i += 1;
                        s.push(' ');
                        s.push_str(rest.get(i + 1).ok_or("unterminated string default")?);
                    }
                    field.default = Some(s);
                } else {
                    field.default = Some(value.to_string());
                }
            }
            other => return Err(format!("unknown attribute {other:?}")),
        }
        i += 2;
    }
    if matches!(field.ty, Ty::Struct(_)) && field.nullable.is_some() {
        return Err(format!(
            "{}: nullable single structs are not supported",
            field.name
        ));
    }
    if matches!(field.ty, Ty::Records) && field.nullable.is_none() {
        field.nullable = Some(Versions {
            lo: 0,
            hi: i16::MAX,
        });
    }
    Ok(field)
}

// ---------------------------------------------------------------- codegen

fn base_type(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.to_string(),
        Ty::Uuid => "Uuid".into(),
        Ty::Str => "String".into(),
        Ty::Bytes | Ty::Records => "Bytes".into(),
        Ty::Array(inner) => format!("Vec<{}>", base_type(inner)),
        Ty::Struct(n) => n.clone(),
    }
}

fn rust_type(f: &Field) -> String {
    if f.nullable.is_some() {
        format!("Option<{}>", base_type(&f.ty))
    } else {
        base_type(&f.ty)
    }
}

fn default_expr(f: &Field) -> String {
    let base = match (&f.default, &f.ty) {
        (Some(d), _) if d == "null" => return "None".into(),
        (Some(d), Ty::Str) => format!("String::from({d})"),
        (Some(d), Ty::Prim(p)) if *p != "bool" => format!("{d}_{p}"),
        (Some(d), _) => d.clone(),
        (None, _) => "Default::default()".into(),
    };
    if f.nullable.is_some() {
        format!("Some({base})")
    } else {
        base
    }
}

/// Code writing the non-optional value `expr` (a reference or copy) of `ty`.
fn encode_value(ty: &Ty, expr: &str, depth: usize) -> String {
    match ty {
        Ty::Prim(p) => format!("w.put_{p}(*{expr});"),
        Ty::Uuid => format!("w.put_uuid({expr});"),
        Ty::Str => format!("w.put_string({expr}, flexible)?;"),
        Ty::Bytes => format!("w.put_bytes({expr}, flexible)?;"),
        Ty::Records => format!("w.put_records(Some({expr}), flexible)?;"),
        Ty::Struct(_) => format!("{expr}.encode_fields(w, version)?;"),
        Ty::Array(inner) => {
            let item = format!("item{depth}");
            format!(
                "w.put_array_len(Some({expr}.len()), flexible)?; for {item} in {expr}.iter() {{ {} }}",
                encode_value(inner, &item, depth + 1)
            )
        }
    }
}

fn encode_null(ty: &Ty) -> &'static str {
    match ty {
        Ty::Str => "w.put_null_string(flexible);",
        Ty::Bytes => "w.put_null_bytes(flexible);",
        Ty::Records => "w.put_records(None, flexible)?;",
        Ty::Array(_) => "w.put_array_len(None, flexible)?;",
        _ => "",
    }
}

fn encode_field(s: &Struct, f: &Field) -> String {
    let name = &f.name;
    if let Some(nv) = f.nullable {
        let value = encode_value(&f.ty, "value", 0);
        format!(
            "match &self.{name} {{ Some(value) => {{ {value} }} None if {} => {{ {} }} None => return Err(EncodeError::NullNotAllowed {{ field: \"{}.{name}\", version }}), }}",
            nv.cond(),
            encode_null(&f.ty),
            s.name
        )
    } else {
        encode_value(&f.ty, &format!("(&self.{name})"), 0)
    }
}

/// An expression decoding a non-optional value of `ty`.
fn decode_value(ty: &Ty, field: &str, depth: usize) -> String {
    match ty {
        Ty::Prim(p) => format!("r.{p}()?"),
        Ty::Uuid => "r.uuid()?".into(),
        Ty::Str => format!("r.string(flexible)?.ok_or(DecodeError::UnexpectedNull(\"{field}\"))?"),
        Ty::Bytes => format!("r.bytes(flexible)?.ok_or(DecodeError::UnexpectedNull(\"{field}\"))?"),
        Ty::Records => format!("r.bytes(flexible)?.ok_or(DecodeError::UnexpectedNull(\"{field}\"))?"),
        Ty::Struct(n) => format!("{n}::decode_fields(r, version)?"),
        Ty::Array(inner) => format!(
            "{{ let n = r.array_len(flexible)?.ok_or(DecodeError::UnexpectedNull(\"{field}\"))?; let mut v{depth} = Vec::with_capacity(n.min(crate::wire::MAX_PREALLOCATED_ELEMENTS)); for _ in 0..n {{ v{depth}.push({}); }} v{depth} }}",
            decode_value(inner, field, depth + 1)
        ),
    }
}

fn decode_optional(ty: &Ty, field: &str) -> String {
    match ty {
        Ty::Str => "r.string(flexible)?".into(),
        Ty::Bytes | Ty::Records => "r.bytes(flexible)?".into(),
        Ty::Array(inner) => format!(
            "match r.array_len(flexible)? {{ None => None, Some(n) => {{ let mut v = Vec::with_capacity(n.min(crate::wire::MAX_PREALLOCATED_ELEMENTS)); for _ in 0..n {{ v.push({}); }} Some(v) }} }}",
            decode_value(inner, field, 1)
        ),
        _ => format!("Some({})", decode_value(ty, field, 0)),
    }
}

fn decode_field(s: &Struct, f: &Field) -> String {
    let path = format!("{}.{}", s.name, f.name);
    match f.nullable {
        Some(nv) => format!(
            "if {} {{ {} }} else {{ Some({}) }}",
            nv.cond(),
            decode_optional(&f.ty, &path),
            decode_value(&f.ty, &path, 0)
        ),
        None => decode_value(&f.ty, &path, 0),
    }
}

fn generate_struct(s: &Struct, flexible: Option<i16>) -> String {
    let mut o = String::new();
    let flex_cond = match flexible {
        Some(v) => format!("version >= {v}"),
        None => "false".into(),
    };
    writeln!(o, "/// {}", s.doc).ok();
    writeln!(o, "#[derive(Debug, Clone, PartialEq)]").ok();
    writeln!(o, "pub struct {} {{", s.name).ok();
    for f in &s.fields {
        let lo = f.versions.lo.max(0);
        let range = if f.versions.hi == i16::MAX {
            format!("{lo}+")
        } else {
            format!("{lo}-{}", f.versions.hi)
        };
        writeln!(o, "    /// {} (versions {range})", f.doc).ok();
        writeln!(o, "    pub {}: {},", f.name, rust_type(f)).ok();
    }
    writeln!(o, "}}\n").ok();

    writeln!(
        o,
        "impl Default for {} {{\n    fn default() -> Self {{\n        Self {{",
        s.name
    )
    .ok();
    for f in &s.fields {
        writeln!(o, "            {}: {},", f.name, default_expr(f)).ok();
    }
    writeln!(o, "        }}\n    }}\n}}\n").ok();

    writeln!(o, "impl {} {{", s.name).ok();
    for f in &s.fields {
        writeln!(o, "    /// Sets `{}`.", f.name).ok();
        writeln!(
            o,
            "    pub fn with_{0}(mut self, value: {1}) -> Self {{ self.{0} = value; self }}",
            f.name,
            rust_type(f)
        )
        .ok();
    }
    // encode
    writeln!(o, "    /// Writes the fields present in `version`.").ok();
    writeln!(
        o,
        "    #[allow(unused_variables, clippy::needless_borrow, clippy::nonminimal_bool)]"
    )
    .ok();
    writeln!(o, "    pub(crate) fn encode_fields(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError> {{").ok();
    writeln!(o, "        let flexible = {flex_cond};").ok();
    for f in s.fields.iter().filter(|f| f.tag.is_none()) {
        writeln!(
            o,
            "        if {} {{ {} }}",
            f.versions.cond(),
            encode_field(s, f)
        )
        .ok();
    }
    let mut tagged: Vec<&Field> = s.fields.iter().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);
    writeln!(o, "        if flexible {{").ok();
    if tagged.is_empty() {
        writeln!(o, "            w.put_uvarint(0);").ok();
    } else {
        writeln!(
            o,
            "            let mut tagged: Vec<(u32, Writer)> = Vec::new();"
        )
        .ok();
        for f in &tagged {
            writeln!(
                o,
                "            if {} && self.{} != {{ let d: {} = {}; d }} {{ let mut sub = Writer::new(); {{ let w = &mut sub; {} }} tagged.push(({}, sub)); }}",
                f.versions.cond(),
                f.name,
                rust_type(f),
                default_expr(f),
                encode_field(s, f),
                f.tag.unwrap_or_default()
            )
            .ok();
        }
        writeln!(o, "            w.put_tagged_fields(tagged)?;").ok();
    }
    writeln!(o, "        }}\n        Ok(())\n    }}").ok();
    // decode
    writeln!(o, "    /// Reads the fields present in `version`.").ok();
    writeln!(
        o,
        "    #[allow(unused_variables, unused_mut, clippy::nonminimal_bool)]"
    )
    .ok();
    writeln!(o, "    pub(crate) fn decode_fields(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{").ok();
    writeln!(o, "        let flexible = {flex_cond};").ok();
    writeln!(o, "        let mut this = Self::default();").ok();
    for f in s.fields.iter().filter(|f| f.tag.is_none()) {
        writeln!(
            o,
            "        if {} {{ this.{} = {}; }}",
            f.versions.cond(),
            f.name,
            decode_field(s, f)
        )
        .ok();
    }
    writeln!(o, "        if flexible {{").ok();
    writeln!(o, "            let count = r.uvarint()?;").ok();
    writeln!(o, "            for _ in 0..count {{").ok();
    writeln!(o, "                let tag = r.uvarint()?;").ok();
    writeln!(o, "                let mut sub = r.sub_reader()?;").ok();
    writeln!(o, "                #[allow(clippy::match_single_binding)]").ok();
    writeln!(o, "                match tag {{").ok();
    for f in &tagged {
        writeln!(
            o,
            "                    {} if {} => {{ let r = &mut sub; this.{} = {}; }}",
            f.tag.unwrap_or_default(),
            f.versions.cond(),
            f.name,
            decode_field(s, f)
        )
        .ok();
    }
    writeln!(o, "                    _ => {{}}").ok();
    writeln!(o, "                }}\n            }}\n        }}").ok();
    writeln!(o, "        Ok(this)\n    }}").ok();
    writeln!(o, "}}\n").ok();

    // Random values for the differential tests.
    writeln!(
        o,
        "#[cfg(test)]\nimpl crate::sample::Sample for {} {{",
        s.name
    )
    .ok();
    writeln!(
        o,
        "    #[allow(unused_variables, unused_mut, clippy::nonminimal_bool)]"
    )
    .ok();
    writeln!(
        o,
        "    fn sample(g: &mut crate::sample::Gen, version: i16) -> Self {{"
    )
    .ok();
    writeln!(o, "        let mut this = Self::default();").ok();
    for f in &s.fields {
        let nullable = f
            .nullable
            .map(|v| v.cond())
            .unwrap_or_else(|| "false".into());
        let value = if f.nullable.is_some() {
            format!("if {nullable} && g.coin() {{ None }} else {{ Some(crate::sample::Sample::sample(g, version)) }}")
        } else {
            "crate::sample::Sample::sample(g, version)".into()
        };
        writeln!(
            o,
            "        if {} {{ this.{} = {value}; }}",
            f.versions.cond(),
            f.name
        )
        .ok();
    }
    writeln!(o, "        this\n    }}\n}}\n").ok();
    o
}

fn generate(module: &str, file: &File) -> String {
    let mut o = String::new();
    let doc = match &file.api {
        Some(api) => format!(
            "The {} API (key {}), versions {}-{}.",
            api.name, api.key, api.versions.lo, api.versions.hi
        ),
        None => format!("Versioned structures of `{module}.schema`."),
    };
    writeln!(o, "/// {doc}").ok();
    writeln!(o, "pub mod {module} {{").ok();
    writeln!(
        o,
        "    #![allow(clippy::all, missing_docs, unused_imports, unused_parens)]"
    )
    .ok();
    writeln!(o, "    use bytes::Bytes;").ok();
    writeln!(o, "    use uuid::Uuid;").ok();
    writeln!(
        o,
        "    use crate::wire::{{DecodeError, EncodeError, Reader, Writer}};"
    )
    .ok();
    writeln!(o, "    use crate::{{ApiKey, Message, VersionRange}};\n").ok();
    let flexible = file.api.as_ref().map(|a| a.flexible);
    for s in &file.structs {
        let flex = match (&flexible, file.data.get(&s.name)) {
            (_, Some((_, f))) => *f,
            (Some(f), None) => *f,
            (None, None) => {
                // A nested struct of a data structure: the file's only data flexibility.
                file.data.values().next().and_then(|(_, f)| *f)
            }
        };
        o.push_str(&generate_struct(s, flex));
    }
    for top in &file.tops {
        let (versions, flex, key) = match (&file.api, file.data.get(top)) {
            (_, Some((v, f))) => (*v, *f, "None".to_string()),
            (Some(api), None) => (
                api.versions,
                api.flexible,
                format!("Some(ApiKey::{})", api.name),
            ),
            (None, None) => continue,
        };
        let flex = flex
            .map(|v| format!("Some({v})"))
            .unwrap_or_else(|| "None".into());
        writeln!(
            o,
            "impl Message for {top} {{\n    const API_KEY: Option<ApiKey> = {key};\n    const VERSIONS: VersionRange = VersionRange {{ min: {}, max: {} }};\n    const FIRST_FLEXIBLE: Option<i16> = {flex};\n    fn encode_body(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError> {{ self.encode_fields(w, version) }}\n    fn decode_body(r: &mut Reader, version: i16) -> Result<Self, DecodeError> {{ Self::decode_fields(r, version) }}\n}}\n",
            versions.lo, versions.hi
        )
        .ok();
    }
    if let Some(api) = &file.api {
        writeln!(
            o,
            "impl crate::Request for {} {{\n    type Response = {};\n    const KEY: ApiKey = ApiKey::{};\n}}\n",
            file.request, file.response, api.name
        )
        .ok();
    }
    writeln!(o, "}}\npub use {module}::{{{}}};\n", file.tops.join(", ")).ok();
    o
}

fn generate_api_table(apis: &[(String, Api, String, String)]) -> String {
    let mut o = String::new();
    writeln!(
        o,
        "/// The versions of every API this codec encodes and decodes, and the first flexible one."
    )
    .ok();
    writeln!(
        o,
        "pub const CODEC_APIS: &[(ApiKey, VersionRange, Option<i16>)] = &["
    )
    .ok();
    for (_, api, _, _) in apis {
        let flex = api
            .flexible
            .map(|v| format!("Some({v})"))
            .unwrap_or_else(|| "None".into());
        writeln!(
            o,
            "    (ApiKey::{}, VersionRange {{ min: {}, max: {} }}, {flex}),",
            api.name, api.versions.lo, api.versions.hi
        )
        .ok();
    }
    writeln!(o, "];\n").ok();
    // A macro that expands a caller's code once per API, for dispatch tables and tests.
    writeln!(o, "/// Calls `$m!(ApiName, module, RequestType, ResponseType)` once per API the codec knows\n/// (types under `sediment_protocol::messages::module`).").ok();
    writeln!(
        o,
        "#[allow(unused_macros)]\nmacro_rules! for_each_api {{\n    ($m:ident) => {{"
    )
    .ok();
    for (module, api, req, resp) in apis {
        writeln!(o, "        $m!({}, {module}, {req}, {resp});", api.name).ok();
    }
    writeln!(o, "    }};\n}}").ok();
    o
}
