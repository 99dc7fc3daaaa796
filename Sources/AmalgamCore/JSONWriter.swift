extension JSONValue {
    /// Compact text as Rust's serde_json writes it (the safetensors header): no spaces,
    /// non-ASCII kept as UTF-8, control characters as `\u00xx`.
    public func compactText() -> String {
        var out = ""
        writeCompact(into: &out)
        return out
    }

    /// Indented text as Python's `json.dumps(value, indent=2, sort_keys=…)` writes it (what
    /// transformers writes for `config.json` and the shard index): non-ASCII escaped as `\uxxxx`.
    public func pythonText(indent: Int = 2, sortKeys: Bool = true) -> String {
        var out = ""
        writePython(into: &out, level: 0, indent: indent, sortKeys: sortKeys)
        return out
    }

    private func writeCompact(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): JSONValue.quote(s, asciiOnly: false, into: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.writeCompact(into: &out)
            }
            out += "]"
        case let .object(object):
            out += "{"
            for (i, entry) in object.entries.enumerated() {
                if i > 0 { out += "," }
                JSONValue.quote(entry.key, asciiOnly: false, into: &out)
                out += ":"
                entry.value.writeCompact(into: &out)
            }
            out += "}"
        }
    }

    private func writePython(into out: inout String, level: Int, indent: Int, sortKeys: Bool) {
        let pad = String(repeating: " ", count: (level + 1) * indent)
        let closePad = String(repeating: " ", count: level * indent)
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): JSONValue.quote(s, asciiOnly: true, into: &out)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                if i > 0 { out += ",\n" }
                out += pad
                item.writePython(into: &out, level: level + 1, indent: indent, sortKeys: sortKeys)
            }
            out += "\n" + closePad + "]"
        case let .object(object):
            if object.count == 0 { out += "{}"; return }
            out += "{\n"
            // Python sorts keys by code point, as Swift's String comparison of unicode scalars does.
            let entries = sortKeys
                ? object.entries.sorted { Array($0.key.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.key.unicodeScalars.map(\.value)) }
                : object.entries
            for (i, entry) in entries.enumerated() {
                if i > 0 { out += ",\n" }
                out += pad
                JSONValue.quote(entry.key, asciiOnly: true, into: &out)
                out += ": "
                entry.value.writePython(into: &out, level: level + 1, indent: indent, sortKeys: sortKeys)
            }
            out += "\n" + closePad + "}"
        }
    }

    private static let hexDigits = Array("0123456789abcdef")

    /// Appends `s` as a JSON string literal, as Python's `json.dumps(s, ensure_ascii=asciiOnly)` writes it:
    /// `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other control characters as `\u00xx`; with `asciiOnly`
    /// also DEL and every non-ASCII scalar as `\uxxxx` (UTF-16 surrogate pairs above U+FFFF). Without
    /// `asciiOnly` it is also what serde_json writes.
    public static func quote(_ s: String, asciiOnly: Bool, into out: inout String) {
        out += "\""
        func u16(_ v: UInt32, _ out: inout String) {
            out += "\\u"
            for shift in stride(from: 12, through: 0, by: -4) { out.append(hexDigits[Int((v >> UInt32(shift)) & 0xF)]) }
        }
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                let v = scalar.value
                if v < 0x20 || (asciiOnly && v == 0x7F) {
                    u16(v, &out)
                } else if asciiOnly && v > 0x7F {
                    if v >= 0x10000 {
                        let w = v - 0x10000
                        u16(0xD800 + (w >> 10), &out)
                        u16(0xDC00 + (w & 0x3FF), &out)
                    } else {
                        u16(v, &out)
                    }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
