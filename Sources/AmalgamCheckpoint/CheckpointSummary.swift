import AmalgamCore
import Foundation

/// What `amalgam inspect` reports about a checkpoint.
public struct CheckpointSummary: Sendable {
    public enum Format: String, Sendable { case folder, safetensors, gguf }

    public let path: String
    public let format: Format
    public let architecture: String?
    public let modelType: String?
    public let layerCount: Int?
    public let parameterCount: Int
    public let totalBytes: Int
    /// Tensor count per dtype (or quantization type), in a stable order.
    public let dtypeCounts: [(name: String, count: Int)]
    public let tensors: [(name: String, type: String, shape: [Int], bytes: Int)]
    /// Format-specific key facts (GGUF metadata, safetensors metadata, files), in display order.
    public let facts: [(key: String, value: String)]

    public init(path: String, format: Format, architecture: String?, modelType: String?, layerCount: Int?,
                tensors: [(name: String, type: String, shape: [Int], bytes: Int)], facts: [(key: String, value: String)]) {
        self.path = path
        self.format = format
        self.architecture = architecture
        self.modelType = modelType
        self.tensors = tensors
        self.facts = facts
        parameterCount = tensors.reduce(0) { $0 + Tensor.elementCount($1.shape) }
        totalBytes = tensors.reduce(0) { $0 + $1.bytes }
        let fromNames = Set(tensors.compactMap { TensorName($0.name).layer }).max().map { $0 + 1 }
        self.layerCount = layerCount ?? fromNames
        var counts: [String: Int] = [:]
        for t in tensors { counts[t.type, default: 0] += 1 }
        dtypeCounts = counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Summarises a model folder or a single `.safetensors` file.
    public init(safetensorsPath path: String) throws(CheckpointError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw .file(.cannotOpen(path: path, reason: "no such file or folder"))
        }
        if isDir.boolValue {
            let folder = try ModelFolder(path: path)
            var facts: [(String, String)] = [("weight files", folder.weights.files.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", "))]
            if !folder.companions.isEmpty { facts.append(("companion files", folder.companions.joined(separator: ", "))) }
            self.init(path: path, format: .folder, architecture: folder.config.architectures.first,
                      modelType: folder.config.modelType, layerCount: folder.config.numHiddenLayers,
                      tensors: folder.weights.tensorInfos.map { ($0.name, $0.dtype.rawValue, $0.shape, $0.byteCount) },
                      facts: facts)
        } else {
            let file = try SafetensorsFile(path: path)
            self.init(path: path, format: .safetensors, architecture: nil, modelType: nil, layerCount: nil,
                      tensors: file.tensorInfos.map { ($0.name, $0.dtype.rawValue, $0.shape, $0.byteCount) },
                      facts: file.metadata.map { ("metadata." + $0.key, $0.value) })
        }
    }
}
