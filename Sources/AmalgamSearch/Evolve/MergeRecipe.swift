import AmalgamCore
import AmalgamMerge
import Foundation

/// A merge recipe as mergekit-evolve writes it: `slices` of layer ranges, each source with its per-model
/// parameters (a number, or a list of `{filter, value}`), top-level `normalize` and `int8_mask`.
public struct MergeRecipe: Sendable, Equatable {
    /// A parameter value for one tensor-name filter (nil: every tensor).
    public struct FilteredValue: Sendable, Equatable {
        public var filter: String?
        public var value: Double
    }

    /// A per-model parameter: one number, or the first matching filter's.
    public enum Value: Sendable, Equatable {
        case scalar(Double)
        case filtered([FilteredValue])

        /// The value for the tensor `name` (mergekit: the first filter that is a substring of it).
        public func value(forTensor name: String) -> Double? {
            switch self {
            case let .scalar(v): return v
            case let .filtered(entries): return entries.first { $0.filter.map { name.contains($0) } ?? true }?.value
            }
        }
    }

    /// One source of a slice.
    public struct Source: Sendable, Equatable {
        public var model: String
        public var layerRange: Range<Int>
        /// Parameters by name, in YAML (alphabetical) order.
        public var parameters: [(String, Value)]

        public static func == (a: Source, b: Source) -> Bool {
            a.model == b.model && a.layerRange == b.layerRange && a.parameters.map(\.0) == b.parameters.map(\.0)
                && a.parameters.map(\.1) == b.parameters.map(\.1)
        }

        /// The parameter `name`'s value for the tensor `tensor`.
        public func parameter(_ name: String, tensor: String) -> Double? {
            parameters.first { $0.0 == name }?.1.value(forTensor: tensor)
        }
    }

    /// One output slice.
    public struct Slice: Sendable, Equatable {
        public var sources: [Source]
        /// The slice's own base (slerp: the model with the larger genome value).
        public var baseModel: String?
        /// Slice-level parameters (slerp's `t`).
        public var parameters: [(String, Double)]

        public static func == (a: Slice, b: Slice) -> Bool {
            a.sources == b.sources && a.baseModel == b.baseModel && a.parameters.map(\.0) == b.parameters.map(\.0)
                && a.parameters.map(\.1) == b.parameters.map(\.1)
        }
    }

    public var mergeMethod: String
    public var baseModel: String?
    public var normalize: Bool
    public var int8Mask: Bool
    /// `bfloat16`, `float16` or `float32`.
    public var dtype: String
    public var slices: [Slice]

    /// The slice whose layers hold source layer `layer` (nil: a tensor outside the layers, which reads the
    /// first slice, or the last for the final norm and the output head, as mergekit's planner).
    public func sliceIndex(layer: Int?, isPost: Bool) -> Int? {
        guard let layer else { return isPost ? slices.count - 1 : 0 }
        return slices.firstIndex { $0.sources[0].layerRange.contains(layer) }
    }

    /// The recipe as mergekit YAML (keys sorted, as `MergeConfiguration.to_yaml` writes them).
    public var yaml: String {
        var out = ""
        if let baseModel { out += "base_model: \(Self.scalar(baseModel))\n" }
        out += "dtype: \(dtype)\nmerge_method: \(mergeMethod)\n"
        // mergekit-evolve writes int8_mask and normalize for every method and mergekit ignores those a method
        // does not read; `amalgam merge` rejects them, so only the declared ones are written.
        let declared = Set(MergeMethods.named(mergeMethod)?.globalParameters.map(\.name) ?? [])
        let globals = [("int8_mask", int8Mask), ("normalize", normalize)].filter { declared.contains($0.0) }
        if !globals.isEmpty {
            out += "parameters:\n"
            for (name, value) in globals { out += "  \(name): \(value)\n" }
        }
        out += "slices:\n"
        for slice in slices {
            var first = true
            func key(_ text: String) -> String { defer { first = false }; return (first ? "- " : "  ") + text }
            if let base = slice.baseModel { out += key("base_model: \(Self.scalar(base))\n") }
            if !slice.parameters.isEmpty {
                out += key("parameters:\n")
                for (name, v) in slice.parameters { out += "    \(name): \(Self.number(v))\n" }
            }
            out += key("sources:\n")
            for s in slice.sources {
                out += "  - layer_range: [\(s.layerRange.lowerBound), \(s.layerRange.upperBound)]\n"
                out += "    model: \(Self.scalar(s.model))\n"
                guard !s.parameters.isEmpty else { continue }
                out += "    parameters:\n"
                for (name, value) in s.parameters {
                    switch value {
                    case let .scalar(v): out += "      \(name): \(Self.number(v))\n"
                    case let .filtered(entries):
                        out += "      \(name):\n"
                        for e in entries {
                            if let f = e.filter {
                                out += "      - filter: \(Self.scalar(f))\n        value: \(Self.number(e.value))\n"
                            } else {
                                out += "      - value: \(Self.number(e.value))\n"
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// A double as YAML 1.1 reads it back exactly (shortest round-trip digits, always with a dot).
    static func number(_ v: Double) -> String {
        var text = "\(v)"
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
            text.insert(contentsOf: ".0", at: e)
        }
        return text
    }

    /// A string, quoted when YAML would read it as something else.
    static func scalar(_ s: String) -> String {
        let special = CharacterSet(charactersIn: ":#{}[],&*?|<>=!%@`'\"\\")
        if s.isEmpty || s.rangeOfCharacter(from: special) != nil || s != s.trimmingCharacters(in: .whitespaces)
            || ["true", "false", "null", "yes", "no", "on", "off", "~"].contains(s.lowercased()) || Double(s) != nil {
            return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        return s
    }
}
