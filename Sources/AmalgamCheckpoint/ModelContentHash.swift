import AmalgamCore
import Foundation

extension ModelSource {
    /// The content hash (SHA-256, hex) of the model `reference` names, the same for every copy of it on any
    /// machine or path and different when any byte differs: the digest of a manifest listing, sorted by name,
    /// each file's name and own SHA-256 — a folder's regular files (hidden ones left out; a Hugging Face
    /// snapshot's links read through), a `.gguf` file, or a `.safetensors` file with its folder's
    /// config.json; `model+adapter` lists both parts. Reads every byte: a 7B model in bf16 takes a while.
    public static func contentHash(_ reference: String, relativeTo base: String? = nil) throws(CheckpointError) -> String {
        if let (model, adapter) = try LoRAReference.split(reference, relativeTo: base) {
            let parts = [try contentHash(model, relativeTo: base), try contentHash(adapter, relativeTo: base)]
            return SHA256.hex(Array(("model\t" + parts[0] + "\nadapter\t" + parts[1] + "\n").utf8))
        }
        let path = try resolve(reference, relativeTo: base)
        let fm = FileManager.default
        var files: [(name: String, path: String)] = []
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: path) } catch {
                throw .file(.cannotOpen(path: path, reason: "cannot list the folder: \(error.localizedDescription)"))
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                var sub: ObjCBool = false
                if fm.fileExists(atPath: path + "/" + name, isDirectory: &sub), !sub.boolValue { files.append((name, path + "/" + name)) }
            }
        } else {
            files.append(((path as NSString).lastPathComponent, path))
            if path.lowercased().hasSuffix(".safetensors") {
                let folder = (path as NSString).deletingLastPathComponent
                files.append(("config.json", (folder.isEmpty ? "." : folder) + "/config.json"))
            }
        }
        var manifest = ""
        for file in files {
            guard let digest = SHA256.hex(contentsOf: file.path) else {
                throw .file(.cannotOpen(path: file.path, reason: "cannot read it to hash the model's contents"))
            }
            manifest += file.name + "\t" + digest + "\n"
        }
        return SHA256.hex(Array(manifest.utf8))
    }
}
