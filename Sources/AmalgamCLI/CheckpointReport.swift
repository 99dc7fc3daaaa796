import AmalgamCheckpoint
import AmalgamCore
import Foundation

/// Formats a checkpoint summary for `inspect`.
struct CheckpointReport {
    let summary: CheckpointSummary

    init(path: String) throws {
        summary = path.lowercased().hasSuffix(".gguf")
            ? try CheckpointSummary(ggufPath: path) : try CheckpointSummary(safetensorsPath: path)
    }

    func text(includeTensors: Bool) -> String {
        let s = summary
        var out = "\(s.path)\n"
        out += "  format:       \(s.format.rawValue)\n"
        if let a = s.architecture { out += "  architecture: \(a)\n" }
        if let m = s.modelType { out += "  model type:   \(m)\n" }
        if let l = s.layerCount { out += "  layers:       \(l)\n" }
        out += "  parameters:   \(formatCount(s.parameterCount)) (\(s.parameterCount))\n"
        out += "  tensor bytes: \(formatBytes(s.totalBytes)) (\(s.totalBytes))\n"
        out += "  types:        \(s.dtypeCounts.map { "\($0.name) ×\($0.count)" }.joined(separator: ", "))\n"
        // A value with line breaks or control characters is shown quoted, so each fact stays one line.
        for (k, v) in s.facts {
            let shown = v.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? JSONValue.string(v).compactText() : v
            out += "  \(k): \(shown)\n"
        }
        if includeTensors {
            out += "  tensors (\(s.tensors.count)):\n"
            let width = s.tensors.map(\.name.count).max() ?? 0
            for t in s.tensors {
                out += "    " + t.name.padding(toLength: width, withPad: " ", startingAt: 0)
                out += "  " + t.type.padding(toLength: 6, withPad: " ", startingAt: 0)
                out += "  [" + t.shape.map(String.init).joined(separator: ", ") + "]\n"
            }
        }
        return out
    }

    func json(includeTensors: Bool) -> JSONValue {
        let s = summary
        var o = JSONObject()
        o["path"] = .string(s.path)
        o["format"] = .string(s.format.rawValue)
        o["architecture"] = s.architecture.map { .string($0) } ?? .null
        o["model_type"] = s.modelType.map { .string($0) } ?? .null
        o["layers"] = s.layerCount.map { .int($0) } ?? .null
        o["parameters"] = .int(s.parameterCount)
        o["total_bytes"] = .int(s.totalBytes)
        o["types"] = .object(JSONObject(s.dtypeCounts.map { ($0.name, .int($0.count)) }))
        o["facts"] = .object(JSONObject(s.facts.map { ($0.key, .string($0.value)) }))
        if includeTensors {
            o["tensors"] = .array(s.tensors.map { t in
                .object(JSONObject([("name", .string(t.name)), ("dtype", .string(t.type)),
                                    ("shape", .array(t.shape.map { .int($0) })), ("bytes", .int(t.bytes))]))
            })
        }
        return .object(o)
    }
}
