//! A module that imports everything some modules export, with the types
//! they export it at: what wasm-smith's `available_imports` draws from when
//! it generates a module meant to link against them. Shared by the
//! differential tester and the `link` fuzz target (each includes this file
//! by path).

/// `text` as a wat string literal: printable ASCII as is, every other
/// byte as a `\hh` escape.
fn wat_string(text: &str) -> String {
    let mut out = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b' '..=b'~' if byte != b'"' && byte != b'\\' => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:02x}")),
        }
    }
    out.push('"');
    out
}

/// A module importing, for each `(name, bytes)`, every export of `bytes`
/// as import module `name`; `None` when nothing is exported (or a module
/// does not decode).
pub fn import_everything(modules: &[(String, &[u8])]) -> Option<Vec<u8>> {
    use carat_jit::EntityKind;
    let mut wat = String::from("(module\n");
    let mut any = false;
    for (module, bytes) in modules {
        let info = carat_jit::module_info::decode(bytes).ok()?;
        for export in &info.exports {
            let i = export.index as usize;
            let item = match export.kind {
                EntityKind::Func => info.func_type(export.index).to_string(),
                EntityKind::Memory => {
                    let ty = &info.memories[i];
                    let max = ty.maximum.map(|m| m.to_string()).unwrap_or_default();
                    format!("(memory {} {max})", ty.minimum)
                }
                EntityKind::Table => {
                    let ty = &info.tables[i];
                    let max = ty.maximum.map(|m| m.to_string()).unwrap_or_default();
                    format!("(table {} {max} {})", ty.minimum, ty.element)
                }
                EntityKind::Global if info.globals[i].mutable => {
                    format!("(global (mut {}))", info.globals[i].content)
                }
                EntityKind::Global => format!("(global {})", info.globals[i].content),
            };
            wat.push_str(&format!(
                "  (import {} {} {item})\n",
                wat_string(module),
                wat_string(&export.name)
            ));
            any = true;
        }
    }
    wat.push(')');
    any.then(|| wat::parse_str(&wat).expect("the import list parses"))
}
