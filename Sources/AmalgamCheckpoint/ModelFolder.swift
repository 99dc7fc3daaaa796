import AmalgamCore
import Foundation

/// The weights of a model folder: one safetensors file or several shards behind an index.
public final class SafetensorsCheckpoint: TensorSource, @unchecked Sendable {
    public let path: String
    public let files: [SafetensorsFile]
    public let tensorInfos: [TensorInfo]
    private let fileOf: [String: Int]

    /// Opens every file; tensor names must be unique across them.
    public init(path: String, files: [SafetensorsFile]) throws(CheckpointError) {
        self.path = path
        self.files = files
        var infos: [TensorInfo] = []
        var fileOf: [String: Int] = [:]
        for (i, f) in files.enumerated() {
            for t in f.tensorInfos {
                guard fileOf[t.name] == nil else { throw .duplicateTensor(path: f.path, tensor: t.name) }
                fileOf[t.name] = i
                infos.append(t)
            }
        }
        tensorInfos = infos
        self.fileOf = fileOf
    }

    public func info(_ name: String) -> TensorInfo? { fileOf[name].flatMap { files[$0].info(name) } }

    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let i = fileOf[name] else { throw .tensorNotFound(path: path, tensor: name) }
        return try files[i].tensor(name)
    }

    public func release(_ name: String) { fileOf[name].map { files[$0].release(name) } }

    /// Asks the kernel to map a tensor's bytes ahead of use.
    public func prefetch(_ name: String) { fileOf[name].map { files[$0].prefetch(name) } }

    /// Total bytes of tensor data.
    public var totalBytes: Int { tensorInfos.reduce(0) { $0 + $1.byteCount } }
}

/// A Hugging Face model folder: `config.json`, weights (single or sharded safetensors), tokenizer
/// and generation files.
public struct ModelFolder: Sendable {
    /// Files copied alongside merged weights, when present.
    public static let companionFiles = [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
        "vocab.json", "merges.txt", "added_tokens.json", "generation_config.json", "chat_template.jinja",
        "chat_template.json",
    ]

    public let path: String
    public let config: ModelConfig
    public let weights: SafetensorsCheckpoint
    /// Companion files present in the folder (names only).
    public let companions: [String]

    /// Opens a folder, validating every weight file it names.
    public init(path: String) throws(CheckpointError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw .file(.cannotOpen(path: path, reason: "no such file or folder"))
        }
        guard isDir.boolValue else { throw .file(.cannotOpen(path: path, reason: "not a folder")) }
        self.path = path
        let configPath = path + "/config.json"
        guard fm.fileExists(atPath: configPath) else {
            throw .invalidConfig(path: configPath, key: "(file)", reason: "missing; a model folder needs config.json")
        }
        config = try ModelConfig(contentsOf: configPath)
        weights = try ModelFolder.openWeights(folder: path)
        companions = ModelFolder.companionFiles.filter { fm.fileExists(atPath: path + "/" + $0) }
    }

    /// Finds and opens the weights: the index if there is one, else `model.safetensors`, else every
    /// `*.safetensors` file in name order.
    public static func openWeights(folder: String) throws(CheckpointError) -> SafetensorsCheckpoint {
        let fm = FileManager.default
        let indexPath = folder + "/model.safetensors.index.json"
        if fm.fileExists(atPath: indexPath) {
            let json = try JSONValue.read(contentsOf: indexPath, error: CheckpointError.json)
            guard let map = json["weight_map"]?.objectValue else {
                throw .invalidConfig(path: indexPath, key: "weight_map", reason: "missing or not an object")
            }
            var shardNames: [String] = []
            var firstTensor: [String: String] = [:]
            for (tensor, value) in map {
                // A shard is a file of this folder: an absolute path or `..` would read outside it.
                guard let shard = value.stringValue, !shard.isEmpty, !shard.hasPrefix("/"),
                      !shard.split(separator: "/").contains("..") else {
                    throw .invalidConfig(path: indexPath, key: "weight_map.\(tensor)", reason: "must be the name of a file in the folder")
                }
                if firstTensor[shard] == nil { shardNames.append(shard); firstTensor[shard] = tensor }
            }
            var files: [SafetensorsFile] = []
            for shard in shardNames.sorted() {
                let shardPath = folder + "/" + shard
                guard fm.fileExists(atPath: shardPath) else {
                    throw .missingShard(index: indexPath, shard: shard, tensor: firstTensor[shard]!)
                }
                files.append(try SafetensorsFile(path: shardPath))
            }
            let checkpoint = try SafetensorsCheckpoint(path: folder, files: files)
            for (tensor, value) in map where checkpoint.info(tensor) == nil {
                throw .tensorMissingFromShard(index: indexPath, shard: value.stringValue!, tensor: tensor)
            }
            return checkpoint
        }
        if fm.fileExists(atPath: folder + "/model.safetensors") {
            return try SafetensorsCheckpoint(path: folder, files: [SafetensorsFile(path: folder + "/model.safetensors")])
        }
        let names = ((try? fm.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }
        if !safetensors.isEmpty {
            var files: [SafetensorsFile] = []
            for n in safetensors { files.append(try SafetensorsFile(path: folder + "/" + n)) }
            return try SafetensorsCheckpoint(path: folder, files: files)
        }
        if let other = names.first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }) {
            throw .unsupportedWeights(folder: folder, file: other)
        }
        throw .noWeights(folder: folder)
    }

    /// Tensor names of one transformer layer.
    public func tensors(ofLayer layer: Int) -> [TensorInfo] {
        weights.tensorInfos.filter { TensorName($0.name).layer == layer }
    }
}
